"""Frame times as the ffmpeg command line gives them, rebuilt for frames PyAV decodes (AVI, GIF)."""
from typing import Optional


class CliTimes:
    """One decoder's frame times, in its stream's time base, as ffmpeg's decoder stage sets them.

    The command line opens files without AVFMT_FLAG_GENPTS, which PyAV sets: an AVI packet then has
    a decode time only (a B-frame stream) and every picture the decode time of the packet that
    brought it out. The command line takes libavcodec's best-effort timestamp (guess_correct_pts:
    the presentation time unless it went backwards more often than the decode time did); a frame
    with neither (the pictures a B-frame stream flushes at its end) gets the last time plus the last
    frame's estimated duration. Frames the decoder is told to skip would change which packet brings
    a picture out: decode every frame from the start, and without seeks (a flush resets the guess)."""

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: Optional[int] = None     # (None: libavcodec's INT64_MIN, nothing seen yet)
        self.last_dts: Optional[int] = None
        self.prev: Optional[int] = None         # the last frame's time
        self.step: Optional[int] = None         # its estimated duration; None: not one ffmpeg's rule gives here

    def best_effort(self, pts: Optional[int], dts: Optional[int]) -> Optional[int]:
        """libavcodec's guess_correct_pts."""
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if (self.faulty_pts <= self.faulty_dts or dts is None) and pts is not None:
            return pts
        return dts

    def __call__(self, pts: Optional[int], dts: Optional[int], duration: int) -> Optional[int]:
        """The frame's time, or None where the command line's would come from a rule not rebuilt here."""
        t = self.best_effort(pts, dts)
        if t is None:
            if self.prev is None:
                t = 0
            elif self.step is None:
                return None
            else:
                t = self.prev + self.step
        # ffmpeg's video_duration_estimate for a container with timestamps: the frame's duration
        # unless it is a made-up 1 against a longer gap, else the gap since the last frame.
        gap = t - self.prev if self.prev is not None else -1
        if duration > 0 and not (duration == 1 and gap > 2):
            self.step = duration
        elif gap > 0:
            self.step = gap
        else:
            self.step = None                    # (the codec's or the stream's frame rate: not rebuilt)
        self.prev = t
        return t
