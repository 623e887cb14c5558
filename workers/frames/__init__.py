"""The frame engine: pure planning plus thin I/O (docs/STYLE.md rule 10).

plan (which frames, how to reach them; pure) -> probe (open, frame table from the MP4 moov box
or by demuxing; rangeio for URLs) -> capture (PyAV primary, OpenCV fallback, gpu optional) ->
blank (black-frame test) -> encode (size rules, JPEG/PNG/WebP) -> compose (sprites, WebVTT,
JSON index). ``workers.pipeline.run_snapshot`` strings them together.
"""
