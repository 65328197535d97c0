//! The panel lines on a 128×64 monochrome display: [`draw`] renders them
//! with `embedded-graphics`' 6×10 font (21 columns × 6 rows fill 126×60
//! pixels) onto any [`DrawTarget`] with [`BinaryColor`], which an OLED
//! driver (SSD1306 and friends) provides; [`Frame`] is such a target in
//! memory (1 KiB, one bit per pixel), for the host build's PNG picture and
//! for tests.

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};

#[cfg(test)]
use crate::panel::COLUMNS;
use crate::panel::{Line, ROWS};

/// Display width, pixels.
pub const WIDTH: usize = 128;
/// Display height, pixels.
pub const HEIGHT: usize = 64;
/// Pixels per text row.
pub const ROW_HEIGHT: i32 = 10;
/// Pixels per character.
pub const CHAR_WIDTH: i32 = 6;

/// Clear `target` and draw `lines`, one text row each from the top left.
pub fn draw<D: DrawTarget<Color = BinaryColor>>(
    lines: &[Line; ROWS],
    target: &mut D,
) -> Result<(), D::Error> {
    target.clear(BinaryColor::Off)?;
    let style = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    let mut y = 0;
    for l in lines {
        Text::with_baseline(l, Point::new(0, y), style, Baseline::Top).draw(target)?;
        y += ROW_HEIGHT;
    }
    Ok(())
}

/// A 128×64 one-bit frame buffer, rows top to bottom, eight pixels a
/// byte, most significant bit leftmost.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    bits: [u8; WIDTH * HEIGHT / 8],
}

impl Frame {
    /// All pixels off.
    pub const fn new() -> Self {
        Frame {
            bits: [0; WIDTH * HEIGHT / 8],
        }
    }

    /// Whether the pixel at column `x`, row `y` is on (off outside).
    pub fn pixel(&self, x: usize, y: usize) -> bool {
        if x >= WIDTH || y >= HEIGHT {
            return false;
        }
        let i = (y * WIDTH + x) / 8;
        self.bits.get(i).is_some_and(|b| b & (0x80 >> (x % 8)) != 0)
    }

    /// The rows as packed bits (`WIDTH / 8` bytes a row), as a one-bit
    /// grayscale PNG stores them.
    pub fn rows(&self) -> &[u8] {
        &self.bits
    }

    fn set(&mut self, x: usize, y: usize, on: bool) {
        if x >= WIDTH || y >= HEIGHT {
            return;
        }
        let mask = 0x80 >> (x % 8);
        if let Some(b) = self.bits.get_mut((y * WIDTH + x) / 8) {
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Frame {
    /// The picture as text, `#` for a lit pixel.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                f.write_str(if self.pixel(x, y) { "#" } else { "." })?;
            }
            f.write_str("\n")?;
        }
        Ok(())
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(WIDTH as u32, HEIGHT as u32)
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            if let (Ok(x), Ok(y)) = (usize::try_from(p.x), usize::try_from(p.y)) {
                self.set(x, y, color.is_on());
            }
        }
        Ok(())
    }
}

/// The 6×10 font's `T` in its cell, `#` lit: what a test expects to find
/// where it drew one.
#[cfg(test)]
pub(crate) const GLYPH_T: &str = "\
......
#####.
..#...
..#...
..#...
..#...
..#...
..#...
......
......
";

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::String;

    use super::*;

    fn lines(rows: [&str; ROWS]) -> [Line; ROWS] {
        rows.map(|r| Line::try_from(r).unwrap())
    }

    fn frame(rows: [&str; ROWS]) -> Frame {
        let mut f = Frame::new();
        let Ok(()) = draw(&lines(rows), &mut f);
        f
    }

    /// The cell of row `r`, column `c` as text, `#` for lit pixels.
    fn cell(f: &Frame, r: usize, c: usize) -> String {
        let mut s = String::new();
        for y in r * 10..r * 10 + 10 {
            for x in c * 6..c * 6 + 6 {
                s.push(if f.pixel(x, y) { '#' } else { '.' });
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn an_empty_panel_lights_nothing() {
        let f = frame(["", "", "", "", "", ""]);
        assert!((0..HEIGHT).all(|y| (0..WIDTH).all(|x| !f.pixel(x, y))));
    }

    #[test]
    fn a_glyph_is_drawn_in_its_cell_and_nowhere_else() {
        let f = frame(["", "", "  T", "", "", ""]);
        assert_eq!(
            cell(&f, 2, 2),
            GLYPH_T,
            "the 6x10 'T' in row 2, column 2:\n{}",
            cell(&f, 2, 2)
        );
        let lit = (0..HEIGHT)
            .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
            .filter(|&(x, y)| f.pixel(x, y));
        for (x, y) in lit {
            assert!((12..18).contains(&x) && (20..30).contains(&y), "({x}, {y})");
        }
    }

    #[test]
    fn a_full_panel_fits_the_display() {
        let full = "W".repeat(COLUMNS);
        let f = frame([&full, &full, &full, &full, &full, &full]);
        // The last column and last row of text are drawn...
        assert_eq!(cell(&f, 5, 20), cell(&f, 0, 0));
        assert!(cell(&f, 5, 20).contains('#'));
        // ...and the two pixel columns and four rows beyond stay dark.
        assert!((0..HEIGHT).all(|y| !f.pixel(126, y) && !f.pixel(127, y)));
        assert!((60..64).all(|y| (0..WIDTH).all(|x| !f.pixel(x, y))));
    }

    #[test]
    fn drawing_again_clears_the_old_picture() {
        let mut f = frame(["WWWW", "", "", "", "", ""]);
        let Ok(()) = draw(&lines(["", "", "", "", "", ""]), &mut f);
        assert_eq!(f, Frame::new());
    }
}
