//! Byte-matrix transposition, so passes along rows can run as passes down
//! columns (whose inner loops work on whole rows of lanes).

/// Block side: one SSE2 register per block row.
const BLOCK: usize = 16;

/// `dst` (h x w) = `src` (w x h) transposed, in 16x16 blocks, the ragged
/// edge pixel by pixel.
#[inline(always)]
pub(crate) fn transpose(src: &[u8], dst: &mut [u8], w: usize, h: usize) {
    assert!(src.len() >= w * h && dst.len() >= w * h);
    let (wb, hb) = (w / BLOCK * BLOCK, h / BLOCK * BLOCK);
    for y0 in (0..hb).step_by(BLOCK) {
        for x0 in (0..wb).step_by(BLOCK) {
            transpose_block(&src[y0 * w + x0..], w, &mut dst[x0 * h + y0..], h);
        }
    }
    for y in 0..h {
        let x_from = if y < hb { wb } else { 0 };
        for x in x_from..w {
            dst[x * h + y] = src[y * w + x];
        }
    }
}

/// Transposes the 16x16 byte block at the start of `src` (rows
/// `src_stride` apart) into `dst` (rows `dst_stride` apart): four rounds of
/// byte, word, double-word and quad-word interleaves of registers j and
/// j + 8 into 2j and 2j + 1, which transpose rows loaded in bit-reversed
/// order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose_block(src: &[u8], src_stride: usize, dst: &mut [u8], dst_stride: usize) {
    use std::arch::x86_64::*;
    const BIT_REVERSED: [usize; BLOCK] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
    assert!(src.len() >= 15 * src_stride + BLOCK && dst.len() >= 15 * dst_stride + BLOCK);
    #[inline(always)]
    fn round(regs: &mut [__m128i; BLOCK], interleave: impl Fn(__m128i, __m128i) -> [__m128i; 2]) {
        let prev = *regs;
        for j in 0..BLOCK / 2 {
            [regs[2 * j], regs[2 * j + 1]] = interleave(prev[j], prev[j + BLOCK / 2]);
        }
    }
    // SAFETY: SSE2 is part of x86-64, and every 16-byte load and store lies
    // inside its slice (checked above).
    #[allow(unsafe_code)]
    unsafe {
        let mut regs: [__m128i; BLOCK] = std::array::from_fn(|i| {
            _mm_loadu_si128(src.as_ptr().add(BIT_REVERSED[i] * src_stride).cast())
        });
        round(&mut regs, |a, b| {
            [_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b)]
        });
        round(&mut regs, |a, b| {
            [_mm_unpacklo_epi16(a, b), _mm_unpackhi_epi16(a, b)]
        });
        round(&mut regs, |a, b| {
            [_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b)]
        });
        round(&mut regs, |a, b| {
            [_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b)]
        });
        for (i, r) in regs.iter().enumerate() {
            _mm_storeu_si128(dst.as_mut_ptr().add(i * dst_stride).cast(), *r);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn transpose_block(src: &[u8], src_stride: usize, dst: &mut [u8], dst_stride: usize) {
    for y in 0..BLOCK {
        for x in 0..BLOCK {
            dst[x * dst_stride + y] = src[y * src_stride + x];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips_at_ragged_sizes() {
        for (w, h) in [(16, 16), (17, 9), (64, 3), (5, 40), (33, 48), (1, 1)] {
            let src: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
            let mut t = vec![0; w * h];
            transpose(&src, &mut t, w, h);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(t[x * h + y], src[y * w + x], "{w}x{h} at {x},{y}");
                }
            }
            let mut back = vec![0; w * h];
            transpose(&t, &mut back, h, w);
            assert_eq!(back, src);
        }
    }
}
