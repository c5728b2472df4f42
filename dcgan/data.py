"""Training images as dcgan.torch's data loader serves them: random batches drawn with replacement.

Each sample picks a class (a top-level subfolder) uniformly, then an image in it uniformly; the image's
shorter side is scaled to `loadSize`, a random `fineSize` crop is taken and flipped with p = 0.5, and
values go to [-1, 1] (data/donkey_folder.lua). An "epoch" is ceil(min(N, ntrain) / batchSize) batches.

Datasets: `folder`/`imagenet` (an image folder, searched recursively), `lsun` (LSUN's LMDB databases,
as data/donkey_lsun.lua: each `<class>_train_lmdb` is a class, its values encoded JPEG/WebP images; or
LSUN exported to an image folder), `celebA` (img_align_celeba: the 138x138 face crop at (30, 40) of
crop_celebA.lua, done on the fly instead of overwriting the files), `mnist` (IDX files, optionally
gzipped; 1 channel).
"""
import gzip
import io
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from common.cli import UserError
from common.images import open_rgb, to_rgb

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
CELEBA_BOX = (30, 40, 168, 178)  # crop_celebA.lua: image.crop(img, 30, 40, 168, 178)


def warn(msg):
    print(f"warning: {msg}", file=sys.stderr)


def find_images(root, what="DATA_ROOT"):
    """-> (paths, class index per path, class names): image files under `root`, classes = top subfolders.

    Files that do not open as images are skipped with a warning; no image at all is a UserError.
    """
    if not root:
        raise UserError(f"no {what} given: set {what}=path (or -{what} path)")
    if not os.path.isdir(root):
        raise UserError(f"{what}={root}: no such folder")
    paths, labels, classes, bad = [], [], {}, []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        cls = "." if rel == "." else rel.split(os.sep)[0]
        for fn in sorted(filenames):
            if not fn.lower().endswith(IMG_EXTENSIONS) or fn.startswith("."):
                continue
            p = os.path.join(dirpath, fn)
            try:
                with Image.open(p) as im:  # reads the header only
                    im.size
            except (OSError, UnidentifiedImageError, ValueError):
                bad.append(p)
                continue
            paths.append(p)
            labels.append(classes.setdefault(cls, len(classes)))
    if not paths:  # one line, naming the unreadable files if that is what it held
        unreadable = f"{len(bad)} file(s) did not open as images, e.g. {bad[0]}; " if bad else ""
        raise UserError(f"{what}={root}: no readable images found ({unreadable}looked for "
                        f"{', '.join(IMG_EXTENSIONS)} in it and its subfolders)")
    if bad:
        warn(f"skipped {len(bad)} file(s) that are not readable images, e.g. {bad[0]}")
    return paths, labels, list(classes)


def has_images(root):
    return any(fn.lower().endswith(IMG_EXTENSIONS) for _, _, fns in os.walk(root, followlinks=True) for fn in fns)


def read_idx_images(root):
    """MNIST IDX image file in `root` (or the file itself), gzipped or not -> uint8 tensor N x 1 x H x W."""
    path = root
    if os.path.isdir(root):
        names = sorted(f for f in os.listdir(root) if "images-idx3-ubyte" in f or "images.idx3-ubyte" in f)
        if not names:
            raise UserError(f"DATA_ROOT={root}: no MNIST '*-images-idx3-ubyte[.gz]' file in this folder")
        path = os.path.join(root, names[0])
    elif not os.path.isfile(root):
        raise UserError(f"DATA_ROOT={root}: no such folder or file")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            magic, n, h, w = struct.unpack(">iiii", f.read(16))
            if magic != 2051:
                raise UserError(f"{path}: not an IDX image file (magic {magic}, expected 2051)")
            data = np.frombuffer(f.read(n * h * w), dtype=np.uint8)
    except (OSError, struct.error, EOFError) as e:
        raise UserError(f"{path}: cannot read IDX images ({e})") from None
    if data.size != n * h * w:
        raise UserError(f"{path}: truncated IDX file ({data.size} of {n * h * w} bytes)")
    return torch.from_numpy(data.copy()).view(n, 1, h, w)


def scale_shorter(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w < h:
        return img.resize((size, max(size, round(size * h / w))), Image.BILINEAR)
    return img.resize((max(size, round(size * w / h)), size), Image.BILINEAR)


def random_crop_flip(x, fineSize, flip, generator=None):
    """x: C x H x W float in [0, 1] -> random fineSize crop, horizontal flip with p = 0.5, mapped to [-1, 1]."""
    h, w = x.shape[-2:]
    i = int(torch.randint(0, h - fineSize + 1, (), generator=generator))
    j = int(torch.randint(0, w - fineSize + 1, (), generator=generator))
    x = x[..., i:i + fineSize, j:j + fineSize]
    if flip and torch.rand((), generator=generator) < 0.5:
        x = x.flip(-1)
    return x * 2 - 1


def sample_rng(item):
    """A sampler item -> (image index, its own generator): (index, seed) pairs from ClassBalancedSampler make
    each sample's crop and flip depend on its place in the epoch only (not on the loader's workers), so a
    resume in mid-epoch draws exactly what the run would have; a plain index uses the global RNG."""
    if isinstance(item, tuple):
        return item[0], torch.Generator().manual_seed(item[1])
    return item, None


class FolderImages(torch.utils.data.Dataset):
    """Decoded on demand; a file that fails to decode now is replaced by another with a warning."""

    def __init__(self, paths, loadSize, fineSize, nc=3, flip=True, celeba=False):
        self.paths, self.loadSize, self.fineSize = paths, loadSize, fineSize
        self.mode, self.flip, self.celeba = ("L" if nc == 1 else "RGB"), flip, celeba

    def __len__(self):
        return len(self.paths)

    def open(self, i):
        """-> RGB PIL image, as common.images.open_rgb reads it (EXIF orientation, 16-bit, alpha, palette, CMYK)."""
        return open_rgb(self.paths[i])

    def where(self, i):
        return self.paths[i]

    def load(self, i):
        im = self.open(i)
        if self.mode == "L":
            im = im.convert("L")
        if self.celeba and im.size[0] >= CELEBA_BOX[2] and im.size[1] >= CELEBA_BOX[3]:
            im = im.crop(CELEBA_BOX)
        im = scale_shorter(im, self.loadSize)
        a = np.asarray(im, dtype=np.uint8)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        return torch.from_numpy(a.copy()).float().div_(255)

    def __getitem__(self, item):
        i, g = sample_rng(item)
        first = i
        for _ in range(10):
            try:
                x = self.load(i)
                break
            except (UserError, OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
                warn(f"skipping {self.where(i)}: {e}")
                i = int(torch.randint(0, len(self), (), generator=g))
        else:
            raise UserError(f"too many unreadable images (10 in a row), e.g. {self.where(first)}")
        return random_crop_flip(x, self.fineSize, self.flip, g)


class LMDBImages(FolderImages):
    """LSUN's LMDB databases (data/donkey_lsun.lua): values are encoded images (JPEG, WebP, PNG), one
    database per class. Keys are listed once, in LMDB's sorted order, so a seed gives the same draws; each
    process opens its own read-only environment when it first reads (an LMDB handle does not survive a
    fork), shared by the datasets in that process."""

    def __init__(self, dbs, loadSize, fineSize, nc=3, flip=True):
        super().__init__([], loadSize, fineSize, nc, flip)
        self.dbs, keys, labels = list(dbs), [], []
        for c, path in enumerate(self.dbs):
            cached = _ENVS.get((os.getpid(), path))
            env = cached or _open_lmdb(path, keep=False)
            with env.begin() as txn:
                ks = list(txn.cursor().iternext(values=False))
            if not cached:
                env.close()  # DataLoader workers fork later; an environment open here would block theirs
            if not ks:
                raise UserError(f"DATA_ROOT: {path} is an empty LMDB (no images in it)")
            keys += ks
            labels.append(np.full(len(ks), c, np.int64))
        # one fixed-width array (LSUN: 40-byte hex keys) instead of millions of bytes objects; numpy would
        # drop trailing NUL bytes, so keys ending in one stay a list
        self.keys = keys if any(k.endswith(b"\0") for k in keys) else np.array(keys)
        self.labels = np.concatenate(labels)
        self._txns, self._pid = None, None

    def __len__(self):
        return len(self.keys)

    def __getstate__(self):  # DataLoader workers open their own environments
        return dict(self.__dict__, _txns=None, _pid=None)

    def where(self, i):
        return f"{self.dbs[self.labels[i]]} key {bytes(self.keys[i]).decode(errors='replace')}"

    def open(self, i):
        if self._pid != os.getpid():
            self._txns = [_open_lmdb(p).begin(buffers=False) for p in self.dbs]
            self._pid = os.getpid()
        blob = self._txns[self.labels[i]].get(bytes(self.keys[i]))
        if blob is None:
            raise OSError("the key has no value")
        with Image.open(io.BytesIO(blob)) as im:
            return to_rgb(ImageOps.exif_transpose(im))


_ENVS = {}  # (pid, path) -> environment: LMDB allows one open environment per file and process (py-lmdb
# refuses a second, and a forked child inherits the parent's), so datasets in a process share one


def _open_lmdb(path, keep=True):
    if keep and (os.getpid(), path) in _ENVS:
        return _ENVS[os.getpid(), path]
    try:
        import lmdb
    except ImportError:
        raise UserError("dataset=lsun reads LMDB databases with the lmdb package: pip install lmdb") from None
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
        if keep:
            _ENVS[os.getpid(), path] = env
        return env
    except lmdb.Error as e:
        raise UserError(f"DATA_ROOT: {path} is not a readable LMDB ({e}); give an LSUN <class>_train_lmdb "
                        f"folder holding data.mdb") from None


def close_lmdbs(paths):
    """Close this process's environments of `paths`, so that forked loader workers can open their own."""
    for p in paths:
        env = _ENVS.pop((os.getpid(), p), None)
        if env is not None:
            env.close()


def _is_lmdb(path):
    return os.path.isfile(os.path.join(path, "data.mdb"))


def find_lsun(root, classes="bedroom"):
    """-> LMDB folders for dataset=lsun, or None when `root` is LSUN exported as an image folder.

    `root` may be an LMDB itself (a folder holding data.mdb, e.g. bedroom_train_lmdb), or hold
    `<class>_train_lmdb` folders (directly, as lsun_index_generator.lua expects, or under train/, as
    donkey_lsun.lua reads them); `classes` picks them: comma-separated names, or `all`.
    """
    if not root:
        raise UserError("no DATA_ROOT given: set DATA_ROOT=path (or -DATA_ROOT path)")
    if os.path.isfile(root):
        raise UserError(f"DATA_ROOT={root}: a file, not a folder; unzip LSUN's <class>_train_lmdb.zip and give "
                        f"the <class>_train_lmdb folder (it holds data.mdb)")
    if not os.path.isdir(root):
        raise UserError(f"DATA_ROOT={root}: no such folder")
    if _is_lmdb(root):
        return [root]
    found = {}
    for parent in (root, os.path.join(root, "train")):
        if os.path.isdir(parent):
            for d in sorted(os.listdir(parent)):
                if d.endswith("_train_lmdb") and _is_lmdb(os.path.join(parent, d)):
                    found.setdefault(d[: -len("_train_lmdb")], os.path.join(parent, d))
    if found:
        wanted = sorted(found) if classes == "all" else [c.strip() for c in classes.split(",") if c.strip()]
        missing = [c for c in wanted if c not in found]
        if missing or not wanted:
            raise UserError(f"DATA_ROOT={root}: no {', '.join(f'{c}_train_lmdb' for c in missing) or 'class'} "
                            f"in it; lsun_class= one or more of {','.join(sorted(found))}, or all")
        return [found[c] for c in wanted]
    return None


class TensorImages(torch.utils.data.Dataset):
    """An in-memory uint8 N x C x H x W set (MNIST), scaled once so its shorter side is `loadSize`."""

    def __init__(self, images, loadSize, fineSize, flip=True):
        x = images.float().div(255)
        if min(x.shape[-2:]) != loadSize:
            h, w = x.shape[-2:]
            size = (loadSize, round(loadSize * w / h)) if h <= w else (round(loadSize * h / w), loadSize)
            x = torch.cat([F.interpolate(c, size=size, mode="bilinear", antialias=True, align_corners=False)
                           for c in x.split(1000)]).clamp_(0, 1)
        self.x, self.fineSize, self.flip = x, fineSize, flip

    def __len__(self):
        return len(self.x)

    def __getitem__(self, item):
        i, g = sample_rng(item)
        return random_crop_flip(self.x[i], self.fineSize, self.flip, g)


class ClassBalancedSampler(torch.utils.data.Sampler):
    """dataset.lua's sampling: class uniformly, then an image of it uniformly, with replacement.

    An epoch's `n` draws come from its own seed (`set_epoch`), each as (image index, seed of its crop and
    flip); `skip` leaves out the first draws, so a run resumed after k batches continues with draw k * B.
    """

    def __init__(self, labels, n, seed=None):
        labels = torch.as_tensor(labels)
        self.by_class = [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]
        self.by_class = [ix for ix in self.by_class if len(ix)]
        self.n, self.skip = n, 0
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else seed

    def set_epoch(self, seed, skip=0):
        self.seed, self.skip = seed, skip

    def __len__(self):
        return self.n - self.skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        cls = torch.randint(0, len(self.by_class), (self.n,), generator=g).tolist()
        pick = torch.randint(0, 2**62, (self.n,), generator=g).tolist()
        seeds = torch.randint(0, 2**62, (self.n,), generator=g).tolist()
        for k in range(self.skip, self.n):
            ix = self.by_class[cls[k]]
            yield int(ix[pick[k] % len(ix)]), seeds[k]


def make_dataset(opt):
    """-> (dataset, labels, nc) for opt.dataset under opt.DATA_ROOT."""
    flip = bool(opt.flip)
    if opt.dataset == "mnist":
        images = read_idx_images(opt.DATA_ROOT)
        if opt.nc == 3:
            images = images.expand(-1, 3, -1, -1)
        return TensorImages(images, opt.loadSize, opt.fineSize, flip), [0] * len(images), images.shape[1]
    nc = opt.nc or 3
    if opt.dataset == "lsun":
        dbs = find_lsun(opt.DATA_ROOT, opt.lsun_class)
        if dbs:
            ds = LMDBImages(dbs, opt.loadSize, opt.fineSize, nc, flip)
            return ds, ds.labels, nc
        if not has_images(opt.DATA_ROOT):
            raise UserError(f"DATA_ROOT={opt.DATA_ROOT}: not an LSUN LMDB (no data.mdb in it, no "
                            f"<class>_train_lmdb folder in it or in its train/) and no images; give the "
                            f"bedroom_train_lmdb folder (or its parent), or a folder of exported images")
    paths, labels, classes = find_images(opt.DATA_ROOT)
    ds = FolderImages(paths, opt.loadSize, opt.fineSize, nc, flip, celeba=opt.dataset == "celebA")
    return ds, labels, nc


def check_sizes(opt, min_side=None):
    if opt.loadSize < opt.fineSize:
        raise UserError(f"loadSize={opt.loadSize} is smaller than fineSize={opt.fineSize}: the random crop "
                        f"needs loadSize >= fineSize")


def make_loader(opt, rank=0):
    """-> (DataLoader yielding B x nc x fineSize x fineSize batches in [-1, 1], batches per epoch, nc, N)."""
    check_sizes(opt)
    ds, labels, nc = make_dataset(opt)
    n = min(len(ds), opt.ntrain)
    batches = math.ceil(n / opt.batchSize)
    if isinstance(ds, LMDBImages) and opt.nThreads > 0:
        close_lmdbs(ds.dbs)  # e.g. left open by an earlier nThreads=0 run in this process
    sampler = ClassBalancedSampler(labels, batches * opt.batchSize)
    # the loader's own generator seeds its workers: the global RNG (the noise) is not drawn from when an
    # epoch's iterator starts, and the samples carry their own seeds (so the workers' do not matter)
    loader = torch.utils.data.DataLoader(ds, opt.batchSize, sampler=sampler, num_workers=opt.nThreads,
                                         drop_last=True, persistent_workers=False, generator=torch.Generator(),
                                         pin_memory=torch.cuda.is_available() and opt.gpu > 0)
    return loader, batches, nc, len(ds)
