//! Card-face images: the name, address, security code and My Number as 1-bit PNGs, and a
//! placeholder face photo.
//!
//! A real card stores the name and address as 1-bit PNG images and the photo as a greyscale
//! JPEG 2000. We bundle no CJK font, so text is drawn the way GNU Unifont draws a glyph it lacks:
//! every character becomes a 15×15 box holding its Unicode code point in hexadecimal, written
//! with a tiny built-in 3×5 digit font — two rows of two digits for characters in the Basic
//! Multilingual Plane, two rows of three digits above U+FFFF. ASCII digits and full-width digits
//! (U+FF10–U+FF19, as used in addresses) are drawn as plain, double-size digits instead, and
//! whitespace (including U+3000, the ideographic space between family and given name) is blank.
//!
//! All images are deterministic: the same input always gives the same bytes.

use crate::CardError;
use png::{BitDepth, ColorType, Compression};

/// The 3×5 glyphs of the hexadecimal digits 0–F, one row per byte, the leftmost pixel in bit 2.
const HEX_FONT: [[u8; 5]; 16] = [
    [0b111, 0b101, 0b101, 0b101, 0b111], // 0
    [0b010, 0b110, 0b010, 0b010, 0b111], // 1
    [0b111, 0b001, 0b111, 0b100, 0b111], // 2
    [0b111, 0b001, 0b111, 0b001, 0b111], // 3
    [0b101, 0b101, 0b111, 0b001, 0b001], // 4
    [0b111, 0b100, 0b111, 0b001, 0b111], // 5
    [0b111, 0b100, 0b111, 0b101, 0b111], // 6
    [0b111, 0b001, 0b001, 0b001, 0b001], // 7
    [0b111, 0b101, 0b111, 0b101, 0b111], // 8
    [0b111, 0b101, 0b111, 0b001, 0b111], // 9
    [0b111, 0b101, 0b111, 0b101, 0b101], // A
    [0b110, 0b101, 0b110, 0b101, 0b110], // B
    [0b111, 0b100, 0b100, 0b100, 0b111], // C
    [0b110, 0b101, 0b101, 0b101, 0b110], // D
    [0b111, 0b100, 0b111, 0b100, 0b111], // E
    [0b111, 0b100, 0b111, 0b100, 0b100], // F
];

/// Horizontal advance of one character of text.
const CELL_W: usize = 16;
/// Height of one line of text (a 15-pixel box plus spacing).
const LINE_H: usize = 18;
/// Side of the box around a character.
const BOX: usize = 15;
/// Blank border around every image.
const MARGIN: usize = 4;
/// The largest width or height we draw, to keep images (and memory) bounded.
const MAX_DIM: usize = 8192;

/// Scale of the digits in [`digits_png`].
const DIGIT_SCALE: usize = 3;
/// Horizontal advance of one digit in [`digits_png`].
const DIGIT_ADVANCE: usize = 4 * DIGIT_SCALE;
/// Horizontal advance of a space in [`digits_png`].
const SPACE_ADVANCE: usize = 2 * DIGIT_SCALE;

/// Size of the placeholder photo.
const PHOTO_W: usize = 120;
const PHOTO_H: usize = 150;

/// A black-and-white drawing surface.
struct Canvas {
    width: usize,
    height: usize,
    black: Vec<bool>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Result<Self, CardError> {
        if width == 0 || height == 0 || width > MAX_DIM || height > MAX_DIM {
            return Err(CardError::Damaged(format!(
                "image of {width}x{height} pixels is out of range (1 to {MAX_DIM})"
            )));
        }
        Ok(Self {
            width,
            height,
            black: vec![false; width * height],
        })
    }

    /// Blackens one pixel; pixels outside the canvas are ignored.
    fn set(&mut self, x: usize, y: usize) {
        if x < self.width
            && y < self.height
            && let Some(p) = self.black.get_mut(y * self.width + x)
        {
            *p = true;
        }
    }

    /// Draws hex digit `d` (0–15) with its top-left corner at (x, y), each font pixel `scale`
    /// pixels square.
    fn digit(&mut self, x: usize, y: usize, d: usize, scale: usize) {
        let Some(rows) = HEX_FONT.get(d) else {
            return;
        };
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            self.set(x + col * scale + dx, y + row * scale + dy);
                        }
                    }
                }
            }
        }
    }

    /// Draws the outline of a `BOX`×`BOX` square with its top-left corner at (x, y).
    fn outline(&mut self, x: usize, y: usize) {
        for i in 0..BOX {
            self.set(x + i, y);
            self.set(x + i, y + BOX - 1);
            self.set(x, y + i);
            self.set(x + BOX - 1, y + i);
        }
    }

    /// Encodes the canvas as a 1-bit greyscale PNG: black pixels 0, white pixels 1.
    fn to_png(&self) -> Result<Vec<u8>, CardError> {
        let stride = self.width.div_ceil(8);
        let mut data = vec![0u8; stride * self.height];
        for (y, row) in data.chunks_exact_mut(stride).enumerate() {
            for x in 0..self.width {
                let black = self.black.get(y * self.width + x).copied().unwrap_or(false);
                if !black && let Some(byte) = row.get_mut(x / 8) {
                    *byte |= 0x80 >> (x % 8);
                }
            }
        }
        encode(self.width, self.height, BitDepth::One, &data)
    }
}

fn png_error(e: impl std::fmt::Display) -> CardError {
    CardError::Damaged(format!("PNG encoding failed: {e}"))
}

/// Encodes greyscale image rows (already packed to `depth`) as a PNG.
fn encode(width: usize, height: usize, depth: BitDepth, data: &[u8]) -> Result<Vec<u8>, CardError> {
    let w = u32::try_from(width).map_err(png_error)?;
    let h = u32::try_from(height).map_err(png_error)?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(ColorType::Grayscale);
    encoder.set_depth(depth);
    encoder.set_compression(Compression::High);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(data).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// The value of an ASCII or full-width digit.
fn plain_digit(c: char) -> Option<usize> {
    match c {
        '0'..='9' => Some(c as usize - '0' as usize),
        '\u{FF10}'..='\u{FF19}' => Some(c as usize - 0xFF10),
        _ => None,
    }
}

/// Draws one character in the cell whose top-left corner is (x, y).
fn glyph(canvas: &mut Canvas, x: usize, y: usize, c: char) {
    if c.is_whitespace() {
        return;
    }
    if let Some(d) = plain_digit(c) {
        // A double-size digit (6×10) centred in the box.
        canvas.digit(x + (BOX - 6) / 2, y + (BOX - 10) / 2, d, 2);
        return;
    }
    canvas.outline(x, y);
    let cp = u32::from(c);
    let (digits, per_row) = if cp <= 0xFFFF { (4, 2) } else { (6, 3) };
    // Each row of digits is per_row × 3 pixels plus one-pixel gaps, centred in the box.
    let row_w = per_row * 4 - 1;
    let left = x + (BOX - row_w) / 2;
    let top = y + 2;
    for i in 0..digits {
        let shift = 4 * (digits - 1 - i);
        let nibble = usize::try_from((cp >> shift) & 0xF).unwrap_or(0);
        let (row, col) = (i / per_row, i % per_row);
        canvas.digit(left + col * 4, top + row * 6, nibble, 1);
    }
}

/// Splits text into lines: at every `\n`, and every `max` characters within a line.
fn wrap(text: &str, max: usize) -> Vec<Vec<char>> {
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let chars: Vec<char> = line.chars().filter(|&c| c != '\r').collect();
        if chars.is_empty() {
            lines.push(Vec::new());
        } else {
            lines.extend(chars.chunks(max).map(<[char]>::to_vec));
        }
    }
    lines
}

/// Renders text as a 1-bit greyscale PNG, black on white, with a 4-pixel margin.
///
/// The text is broken into lines at `\n` and after every `max_chars_per_line` characters. Each
/// character takes a 16×18 cell (see the module documentation for how it is drawn), so the image
/// is `8 + 16 × (longest line)` pixels wide and `8 + 18 × (lines)` high; the empty string gives a
/// 24×26 blank image. Fails when `max_chars_per_line` is 0 or the image would be wider or higher
/// than 8,192 pixels.
pub fn text_png(text: &str, max_chars_per_line: usize) -> Result<Vec<u8>, CardError> {
    if max_chars_per_line == 0 {
        return Err(CardError::Damaged(
            "text image: max_chars_per_line must be at least 1".into(),
        ));
    }
    let lines = wrap(text, max_chars_per_line);
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let rows = lines.len().max(1);
    let too_big = || CardError::Damaged("text image: text too long to draw".into());
    let width = cols
        .checked_mul(CELL_W)
        .and_then(|w| w.checked_add(2 * MARGIN))
        .ok_or_else(too_big)?;
    let height = rows
        .checked_mul(LINE_H)
        .and_then(|h| h.checked_add(2 * MARGIN))
        .ok_or_else(too_big)?;
    if width > MAX_DIM || height > MAX_DIM {
        return Err(too_big());
    }
    let mut canvas = Canvas::new(width, height)?;
    for (row, line) in lines.iter().enumerate() {
        for (col, &c) in line.iter().enumerate() {
            glyph(&mut canvas, MARGIN + col * CELL_W, MARGIN + row * LINE_H, c);
        }
    }
    canvas.to_png()
}

/// Renders a string of ASCII digits (spaces allowed as narrow gaps) as a 1-bit greyscale PNG, for
/// the security code and the My Number image. Digits are the 3×5 font at triple size (9×15
/// pixels, 12-pixel advance) with a 4-pixel margin. Fails on any other character or when the image
/// would be wider than 8,192 pixels.
pub fn digits_png(digits: &str) -> Result<Vec<u8>, CardError> {
    let mut advance = 0usize;
    for c in digits.chars() {
        advance = advance.saturating_add(match c {
            '0'..='9' => DIGIT_ADVANCE,
            ' ' => SPACE_ADVANCE,
            _ => {
                return Err(CardError::Damaged(
                    "digits image: only ASCII digits and spaces can be drawn".into(),
                ));
            }
        });
    }
    let width = advance.saturating_add(2 * MARGIN);
    let height = 5 * DIGIT_SCALE + 2 * MARGIN;
    let mut canvas = Canvas::new(width, height)?;
    let mut x = MARGIN;
    for c in digits.chars() {
        if let Some(d) = plain_digit(c) {
            canvas.digit(x, MARGIN, d, DIGIT_SCALE);
            x += DIGIT_ADVANCE;
        } else {
            x += SPACE_ADVANCE;
        }
    }
    canvas.to_png()
}

/// Whether (x, y) lies inside the axis-aligned ellipse centred at (cx, cy) with radii rx, ry.
fn in_ellipse(x: i64, y: i64, cx: i64, cy: i64, rx: i64, ry: i64) -> bool {
    let (dx, dy) = (x - cx, y - cy);
    dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry
}

/// Renders a 120×150 8-bit greyscale PNG placeholder portrait: a head-and-shoulders silhouette
/// on a graded background. The tones, the head size, the hairline and the direction of the light
/// are derived from SHA-256 of `seed`, so the same seed always gives the same image. It stands in
/// for the greyscale JPEG 2000 photo of a real card.
pub fn photo_png(seed: &[u8]) -> Result<Vec<u8>, CardError> {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed);
    let h = |i: usize| i64::from(hash.as_ref().get(i).copied().unwrap_or(0));
    let background = 190 + h(0) % 50;
    let skin = 150 + h(1) % 60;
    let hair = 15 + h(2) % 60;
    let clothes = 35 + h(3) % 80;
    let head_rx = 25 + h(4) % 7;
    let head_ry = 33 + h(5) % 7;
    let light = if h(6) & 1 == 0 { 1 } else { -1 };
    let hairline = 38 + h(7) % 10;
    let shoulder_rx = 48 + h(8) % 10;
    let grain = h(9) % 4;

    let (cx, head_cy) = (60i64, 64i64);
    let mut data = Vec::with_capacity(PHOTO_W * PHOTO_H);
    for y in 0..PHOTO_H as i64 {
        for x in 0..PHOTO_W as i64 {
            let dx = x - cx;
            // Background: darker toward the bottom, lit from one side.
            let mut v = background - y * 24 / PHOTO_H as i64 + light * dx / 10;
            // Shoulders and body.
            if in_ellipse(x, y, cx, 182, shoulder_rx, 64) {
                v = clothes + light * dx / 4 + (y - 118) / 6;
            }
            // Neck.
            if dx.abs() <= head_rx / 2
                && (90..130).contains(&y)
                && !in_ellipse(x, y, cx, 182, shoulder_rx, 60)
            {
                v = skin - 30 + light * dx / 2;
            }
            // Hair, behind and above the face.
            if in_ellipse(x, y, cx, head_cy - 4, head_rx + 4, head_ry + 2) && y < head_cy + 8 {
                v = hair + light * dx / 6;
            }
            // Face below the hairline, shaded toward the edges and away from the light.
            if in_ellipse(x, y, cx, head_cy, head_rx, head_ry) && y >= hairline {
                let dy = y - head_cy;
                v = skin + light * dx / 3 - (dx * dx + dy * dy) / 60;
                // Eyes and mouth.
                let eye_y = head_cy - 2;
                if in_ellipse(x, y, cx - head_rx / 2 + 2, eye_y, 4, 2)
                    || in_ellipse(x, y, cx + head_rx / 2 - 2, eye_y, 4, 2)
                {
                    v = hair;
                }
                if y == head_cy + head_ry / 2 + 2 && dx.abs() < 8 {
                    v = skin - 60;
                }
            }
            // A faint deterministic texture.
            v += ((x * 7 + y * 13 + grain) % 5) - 2;
            data.push(u8::try_from(v.clamp(0, 255)).unwrap_or(0));
        }
    }
    encode(PHOTO_W, PHOTO_H, BitDepth::Eight, &data)
}

/// Decodes a PNG completely and returns its width, height and bit depth. Used by tests and by the
/// client's sanity check of images read from the card. Fails on anything that is not a complete,
/// well-formed PNG, or on images whose pixels would need more than 64 MiB.
pub fn decode_png(bytes: &[u8]) -> Result<(u32, u32, u8), CardError> {
    const LIMIT: usize = 64 * 1024 * 1024;
    let bad = |e: &dyn std::fmt::Display| CardError::Damaged(format!("not a valid PNG: {e}"));
    let decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: LIMIT });
    let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= LIMIT)
        .ok_or_else(|| bad(&"image too large"))?;
    let mut buf = vec![0u8; size];
    reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
    let info = reader.info();
    let depth = match info.bit_depth {
        BitDepth::One => 1,
        BitDepth::Two => 2,
        BitDepth::Four => 4,
        BitDepth::Eight => 8,
        BitDepth::Sixteen => 16,
    };
    Ok((info.width, info.height, depth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes with the png crate and returns (width, height, colour type, bit depth, pixels).
    fn decode_full(bytes: &[u8]) -> (u32, u32, ColorType, BitDepth, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let out = reader.next_frame(&mut buf).unwrap();
        buf.truncate(out.buffer_size());
        (out.width, out.height, out.color_type, out.bit_depth, buf)
    }

    /// The number of black pixels of a 1-bit image.
    fn black_pixels(bytes: &[u8]) -> usize {
        let (w, _, _, _, buf) = decode_full(bytes);
        let stride = (w as usize).div_ceil(8);
        buf.chunks(stride)
            .map(|row| {
                (0..w as usize)
                    .filter(|&x| row[x / 8] & (0x80 >> (x % 8)) == 0)
                    .count()
            })
            .sum()
    }

    #[test]
    fn text_is_one_bit_greyscale() {
        let png = text_png("番号　花子", 20).unwrap();
        let (w, h, color, depth, _) = decode_full(&png);
        assert_eq!((color, depth), (ColorType::Grayscale, BitDepth::One));
        assert_eq!((w, h), (8 + 5 * 16, 8 + 18));
        assert_eq!(decode_png(&png).unwrap(), (w, h, 1));
        assert!(black_pixels(&png) > 0);
    }

    #[test]
    fn width_grows_with_text_and_wraps() {
        let widths: Vec<u32> = (1..6)
            .map(|n| decode_png(&text_png(&"あ".repeat(n), 40).unwrap()).unwrap().0)
            .collect();
        assert!(widths.windows(2).all(|w| w[0] < w[1]), "{widths:?}");
        let (w, h, _) = decode_png(&text_png(&"あ".repeat(25), 10).unwrap()).unwrap();
        assert_eq!((w, h), (8 + 10 * 16, 8 + 3 * 18));
        let (_, h, _) = decode_png(&text_png("a\nb", 10).unwrap()).unwrap();
        assert_eq!(h, 8 + 2 * 18);
        assert!(text_png("x", 0).is_err());
    }

    #[test]
    fn empty_text_is_a_small_blank_image() {
        let png = text_png("", 10).unwrap();
        assert_eq!(decode_png(&png).unwrap(), (24, 26, 1));
        assert_eq!(black_pixels(&png), 0);
    }

    #[test]
    fn glyph_kinds() {
        // Whitespace is blank; digits are plain; others are boxed; astral characters use 6 digits.
        assert_eq!(black_pixels(&text_png(" \u{3000}\t", 10).unwrap()), 0);
        let one = black_pixels(&text_png("1", 10).unwrap());
        let full_width_one = black_pixels(&text_png("１", 10).unwrap());
        assert_eq!(one, full_width_one);
        let bmp = black_pixels(&text_png("\u{1111}", 10).unwrap());
        let astral = black_pixels(&text_png("\u{11111}", 10).unwrap());
        // Box outline (56 pixels) plus four or six "1" digits (8 pixels each).
        assert_eq!(bmp, 56 + 4 * 8);
        assert_eq!(astral, 56 + 12 + 5 * 8); // "011111": a "0" has 12 pixels
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(
            text_png("東京都１－１", 8).unwrap(),
            text_png("東京都１－１", 8).unwrap()
        );
        assert_eq!(photo_png(b"seed").unwrap(), photo_png(b"seed").unwrap());
        assert_eq!(digits_png("1234").unwrap(), digits_png("1234").unwrap());
    }

    #[test]
    fn photo_is_eight_bit_greyscale_and_depends_on_seed() {
        let png = photo_png(b"alice").unwrap();
        let (w, h, color, depth, pixels) = decode_full(&png);
        assert_eq!(
            (w, h, color, depth),
            (120, 150, ColorType::Grayscale, BitDepth::Eight)
        );
        assert_eq!(decode_png(&png).unwrap(), (120, 150, 8));
        let other = decode_full(&photo_png(b"bob").unwrap()).4;
        assert_ne!(pixels, other);
        // The head is darker or lighter than the background: the image is not flat.
        let min = pixels.iter().min().unwrap();
        let max = pixels.iter().max().unwrap();
        assert!(max - min > 60);
    }

    #[test]
    fn digits_image() {
        let png = digits_png("1234").unwrap();
        let (w, h, color, depth, _) = decode_full(&png);
        assert_eq!((color, depth), (ColorType::Grayscale, BitDepth::One));
        assert_eq!((w, h), (8 + 4 * 12, 8 + 15));
        let spaced = decode_png(&digits_png("1234 5678 9012").unwrap()).unwrap();
        assert_eq!(spaced.0, 8 + 12 * 12 + 2 * 6);
        assert_eq!(decode_png(&digits_png("").unwrap()).unwrap(), (8, 23, 1));
        assert!(digits_png("12a4").is_err());
        assert!(digits_png("１").is_err());
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode_png(b"").is_err());
        assert!(decode_png(b"\x89PNG\r\n\x1a\n").is_err());
        let png = text_png("abc", 10).unwrap();
        assert!(decode_png(&png[..png.len() - 20]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn random_text_never_panics(text in any::<String>(), max in 0usize..40) {
            match text_png(&text, max) {
                Ok(png) => {
                    prop_assert!(max > 0);
                    prop_assert_eq!(decode_png(&png).unwrap().2, 1);
                }
                Err(_) => prop_assert_eq!(max, 0),
            }
            let _ = digits_png(&text);
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_png(&bytes);
        }
    }
}
