"""Per-image augmentation (issue 16): each image its own crop offset and flip, vectorised on the device."""
import torch

from trainables.data import PAD, Split, augment_batch, batches


def test_identity_offsets_and_no_flip_return_the_batch():
    x = torch.randn(5, 3, 8, 8)
    out = augment_batch(x, torch.full((5, 2), PAD), torch.zeros(5, dtype=torch.bool))
    assert torch.equal(out, x)


def test_each_image_gets_its_own_crop_and_flip():
    x = torch.randn(3, 2, 8, 8)
    offsets = torch.tensor([[PAD, PAD], [PAD, PAD], [0, 2 * PAD]])  # image 2: shifted down 4, left 4
    flips = torch.tensor([False, True, False])
    out = augment_batch(x, offsets, flips)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], x[1].flip(-1))
    assert torch.equal(out[2, :, 4:, :4], x[2, :, :4, 4:])  # the crop's visible part
    assert not out[2, :, :4].any() and not out[2, :, :, 4:].any()  # zero fill where the crop left the image


def test_batches_draw_per_image_not_per_batch():
    """Identical images in one batch come out different (some pair differs in crop or flip), shapes kept."""
    img = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
    split = Split(img.repeat(32, 1, 1, 1), torch.zeros(32, dtype=torch.long))
    x, y = next(batches(split, 32, torch.Generator().manual_seed(0), augment=True))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and y.shape == (32,)
    distinct = {tuple(v.flatten().tolist()) for v in x}
    assert len(distinct) > 8  # 81 offsets x 2 flips: a per-batch draw would give exactly one
    plain, _ = next(batches(split, 32, torch.Generator().manual_seed(0), augment=False))
    assert torch.equal(plain, split.x)


def test_same_generator_state_same_augmented_stream():
    split = Split(torch.randn(20, 1, 8, 8), torch.arange(20))
    a = [x for x, _ in batches(split, 5, torch.Generator().manual_seed(3), augment=True)]
    b = [x for x, _ in batches(split, 5, torch.Generator().manual_seed(3), augment=True)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
