"""Listening pages: one HTML page to hear and see stems side by side.

A page is a folder that opens from ``file://`` or any static web server:
``index.html`` (its CSS and JavaScript inline, nothing fetched from
anywhere) and, beside it, the audio excerpts it plays and the images it
shows. Every player of a group plays the same excerpt window of the song,
by default the loudest stretch of the reference (or, without references,
of the mixture), so switching players compares the same music.

This package sits above the engine (it reads and writes audio through
``demix``) and below the evaluation, whose page (``python -m evaluation
report``) adds scores on top of these pieces, one module per job:

- :mod:`listening_pages.window`: which excerpt every player plays;
- :mod:`listening_pages.descriptors`: power spectrograms and the spectral
  descriptors of a stem (librosa);
- :mod:`listening_pages.render`: spectrogram images (matplotlib, librosa's
  display), FLAC excerpts, reading a window of a stem;
- :mod:`listening_pages.markup`: the HTML pieces and the page around them
  (``page.css``, ``page.js``);
- :mod:`listening_pages.songs`: the page for songs separated without
  references (``python -m demix separate --report``).
"""
