"""The market vocabulary every layer shares, so no layer has to import another to name it.

- `hours.py`: the exchange's zone (`ET`) and the session clock: pre-market 04:00, regular
  hours 09:30-16:00, post-market to four hours after the close (seconds after ET midnight).
- `bars.py`: IB durations and bar sizes as typed values, the one parser of their text
  (bad text raises `UserInputError` naming it), IB's step sizes and bar counts.
- `book.py`: IB's depth-book codes (`BookSide`, `DepthOp`) with the int values IB sends.

Dependency-free: these modules import the standard library only, plus `ibdesk.errors`
(itself standard-library only) for the one user-input error. They must not import any
other ibdesk module or a third-party package; `tests/domain/test_imports.py` keeps it so.
"""
