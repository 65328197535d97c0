//! The panel as a PNG picture (host build only): the 128×64
//! [`Frame`](crate::display::Frame) pixel for pixel, one bit per pixel
//! (lit pixels white, as an OLED shows them).

extern crate std;

use std::io::Write;

use crate::display::{Frame, HEIGHT, WIDTH};

/// Write `frame` as a one-bit grayscale PNG to `out`.
pub fn write_png<W: Write>(frame: &Frame, out: W) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, WIDTH as u32, HEIGHT as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header()?;
    // Rows of 128 pixels are 16 whole bytes, most significant bit leftmost:
    // the frame's own layout.
    writer.write_image_data(frame.rows())?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::display::{GLYPH_T, draw};
    use crate::panel::{Line, ROWS};

    #[test]
    fn the_png_decodes_to_the_frame_pixel_for_pixel() {
        let rows = [
            "fnos-sim       online",
            "CRITICAL",
            "pool vol1 degraded",
            "cpu 3% 46C  mem 36%",
            "nvme0n1 42C  degraded",
            "disk 1.2T/4.4T",
        ];
        let lines: [Line; ROWS] = rows.map(|r| Line::try_from(r).unwrap());
        let mut frame = Frame::new();
        let Ok(()) = draw(&lines, &mut frame);
        let mut bytes = Vec::new();
        write_png(&frame, &mut bytes).unwrap();

        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        // Expanded to one 8-bit gray byte per pixel: read independently of
        // the bit packing.
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut image = std::vec![0u8; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut image).unwrap();
        assert_eq!((info.width, info.height), (WIDTH as u32, HEIGHT as u32));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let mut lit = 0;
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let gray = image[y * info.line_size + x];
                assert!(gray == 0 || gray == 255, "({x}, {y}) = {gray}");
                assert_eq!(gray == 255, frame.pixel(x, y), "({x}, {y})");
                lit += usize::from(gray == 255);
            }
        }
        // The text lit a plausible share of the display.
        assert!((300..3000).contains(&lit), "{lit} pixels lit");
        // The `T` of `CRITICAL` (row 1, column 3) is the font's `T`.
        let mut cell = std::string::String::new();
        for y in 10..20 {
            for x in 18..24 {
                cell.push(if image[y * info.line_size + x] == 255 {
                    '#'
                } else {
                    '.'
                });
            }
            cell.push('\n');
        }
        assert_eq!(cell, GLYPH_T);
    }
}
