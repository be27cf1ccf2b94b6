"""The compiled CPU loops (numba) behind eight corruptions, each one's tensor form in the
corruption's own module for CUDA and MPS (and for the CPU with `ops.CPU_LOOPS = False`;
tests/test_corruption_forms.py checks that the two agree):

- `filters`: the disk correlation of defocus blur, the blur along each image's angle of motion
  blur and snow, the short separable Gaussian blurs (clip fused), glass blur's walk and passes;
- `opencv`: spatter's OpenCV steps (Canny, distance transform, histogram equalisation, the
  water rims), bit-equal to cv2;
- `libjpeg`: libjpeg-turbo's islow codec (JPEG compression), bit-equal to Pillow;
- `pillow_box`: Pillow's two BOX resizes (pixelate), bit-equal;
- `shot_noise`: the packing of shot noise's draws and the values its guide table leaves open.

Where a raster pass is serial along a row or the work per image is a few 8x8 blocks, 16 images
are interleaved value by value so that the loops run as SIMD across images; the halves of a
batch run in two threads (`ops.two_halves`)."""
