//! QR codes of short links, for the API (`GET /api/v1/links/{id}/qr`) and the
//! console: options read from query strings, and images of exactly the
//! requested size, as SVG (qrcode's renderer) or PNG (encoded by `image`).

use std::ops::RangeInclusive;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use qrcode::render::{Renderer, svg};
use qrcode::{EcLevel, QrCode};
use thiserror::Error;

/// Image sizes in pixels (width and height) that may be asked for.
pub const SIZES: RangeInclusive<u32> = 64..=4096;
/// Quiet zones, in modules on each side, that may be asked for.
pub const MARGINS: RangeInclusive<u32> = 0..=16;
/// Image size when none is asked for.
pub const DEFAULT_SIZE: u32 = 512;
/// Quiet zone when none is asked for: the 4 modules the QR standard asks for.
pub const DEFAULT_MARGIN: u32 = 4;

/// The kind of image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrFormat {
    #[default]
    Svg,
    Png,
}

impl QrFormat {
    /// `svg` or `png`, in any case.
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("svg") {
            Some(Self::Svg)
        } else if value.eq_ignore_ascii_case("png") {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// The image's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Svg => "image/svg+xml",
            Self::Png => "image/png",
        }
    }

    /// The file name extension of the image, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }
}

/// How much of a code may be damaged and still read: the QR standard's
/// levels L (7 %), M (15 %), Q (25 %) and H (30 %). Higher levels need more
/// modules for the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorCorrection {
    Low,
    #[default]
    Medium,
    Quartile,
    High,
}

impl ErrorCorrection {
    /// `L`, `M`, `Q` or `H`, in any case.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "L" | "l" => Some(Self::Low),
            "M" | "m" => Some(Self::Medium),
            "Q" | "q" => Some(Self::Quartile),
            "H" | "h" => Some(Self::High),
            _ => None,
        }
    }

    /// The level's letter.
    pub fn letter(self) -> char {
        match self {
            Self::Low => 'L',
            Self::Medium => 'M',
            Self::Quartile => 'Q',
            Self::High => 'H',
        }
    }

    fn level(self) -> EcLevel {
        match self {
            Self::Low => EcLevel::L,
            Self::Medium => EcLevel::M,
            Self::Quartile => EcLevel::Q,
            Self::High => EcLevel::H,
        }
    }
}

/// What an image looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrOptions {
    pub format: QrFormat,
    /// Width and height of the whole image in pixels, quiet zone included
    /// (within [`SIZES`]).
    pub size: u32,
    /// Quiet zone in modules on each side (within [`MARGINS`]).
    pub margin: u32,
    pub ecc: ErrorCorrection,
}

impl Default for QrOptions {
    fn default() -> Self {
        Self {
            format: QrFormat::default(),
            size: DEFAULT_SIZE,
            margin: DEFAULT_MARGIN,
            ecc: ErrorCorrection::default(),
        }
    }
}

/// Options as a caller wrote them (query string values); `None` or an empty
/// value means the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestedOptions<'a> {
    pub format: Option<&'a str>,
    pub size: Option<&'a str>,
    pub margin: Option<&'a str>,
    pub ecc: Option<&'a str>,
}

/// Why options were refused or a code could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QrError {
    #[error("format must be svg or png, not {0:?}")]
    Format(String),
    #[error(
        "size must be a whole number of pixels from {min} to {max}, not {0:?}",
        min = SIZES.start(),
        max = SIZES.end()
    )]
    Size(String),
    #[error(
        "margin must be a whole number of modules from {min} to {max}, not {0:?}",
        min = MARGINS.start(),
        max = MARGINS.end()
    )]
    Margin(String),
    #[error("ecc (error correction) must be L, M, Q or H, not {0:?}")]
    Ecc(String),
    #[error(
        "a size of {size} pixels is too small for this code: its {modules} modules \
         across and a margin of {margin} on each side need at least {needed} pixels \
         (or ask for a smaller margin or a lower ecc)"
    )]
    SizeTooSmall {
        size: u32,
        modules: u32,
        margin: u32,
        needed: u32,
    },
    #[error(
        "the text is {bytes} bytes, too long for a QR code at error correction {}",
        ecc.letter()
    )]
    TextTooLong { bytes: usize, ecc: ErrorCorrection },
    #[error("cannot encode the text as a QR code: {0}")]
    Encode(#[source] qrcode::types::QrError),
    #[error("cannot encode the PNG: {0}")]
    Png(String),
}

impl QrError {
    /// The option at fault (`format`, `size`, `margin` or `ecc`), if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Format(_) => Some("format"),
            Self::Size(_) | Self::SizeTooSmall { .. } => Some("size"),
            Self::Margin(_) => Some("margin"),
            Self::Ecc(_) => Some("ecc"),
            Self::TextTooLong { .. } | Self::Encode(_) | Self::Png(_) => None,
        }
    }
}

impl QrOptions {
    /// Reads options from query string values; each absent or empty one
    /// takes its default.
    pub fn parse(requested: &RequestedOptions<'_>) -> Result<Self, QrError> {
        let defaults = Self::default();
        let format = match given(requested.format) {
            None => defaults.format,
            Some(value) => QrFormat::parse(value).ok_or_else(|| QrError::Format(value.into()))?,
        };
        let size = match given(requested.size) {
            None => defaults.size,
            Some(value) => {
                whole_number(value, &SIZES).ok_or_else(|| QrError::Size(value.into()))?
            }
        };
        let margin = match given(requested.margin) {
            None => defaults.margin,
            Some(value) => {
                whole_number(value, &MARGINS).ok_or_else(|| QrError::Margin(value.into()))?
            }
        };
        let ecc = match given(requested.ecc) {
            None => defaults.ecc,
            Some(value) => {
                ErrorCorrection::parse(value).ok_or_else(|| QrError::Ecc(value.into()))?
            }
        };
        Ok(Self {
            format,
            size,
            margin,
            ecc,
        })
    }

    /// Refuses a size or margin out of range (options built in code).
    fn check(&self) -> Result<(), QrError> {
        if !SIZES.contains(&self.size) {
            return Err(QrError::Size(self.size.to_string()));
        }
        if !MARGINS.contains(&self.margin) {
            return Err(QrError::Margin(self.margin.to_string()));
        }
        Ok(())
    }
}

/// A value that was given: neither absent nor empty.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

/// `value` as a number within `range`.
fn whole_number(value: &str, range: &RangeInclusive<u32>) -> Option<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|number| range.contains(number))
}

/// Draws `text` as a QR code: an image of exactly `options.size` pixels
/// square. Each module is `floor(size / (modules + 2 * margin))` pixels, the
/// same whole number across the image, so edges stay sharp; the pixels left
/// over (fewer than `modules + 2 * margin`) are light, split evenly around the
/// code (the extra one right and below), so the code is centred. A size
/// smaller than `modules + 2 * margin` is refused rather than drawn larger.
pub fn render(text: &str, options: &QrOptions) -> Result<Vec<u8>, QrError> {
    options.check()?;
    let code =
        QrCode::with_error_correction_level(text, options.ecc.level()).map_err(|e| match e {
            qrcode::types::QrError::DataTooLong => QrError::TextTooLong {
                bytes: text.len(),
                ecc: options.ecc,
            },
            other => QrError::Encode(other),
        })?;
    let layout = Layout::new(code.width(), options)?;
    let colors = code.into_colors();
    match options.format {
        QrFormat::Svg => Ok(draw_svg(&colors, &layout).into_bytes()),
        QrFormat::Png => draw_png(&colors, &layout),
    }
}

/// Where the code and its quiet zone sit in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Modules across the code, quiet zone excluded.
    modules: u32,
    margin: u32,
    /// Pixels across one module.
    module_pixels: u32,
    /// Light pixels left and above the quiet zone (right and below: this or
    /// one more).
    offset: u32,
    /// Width and height of the image.
    size: u32,
}

impl Layout {
    fn new(modules: usize, options: &QrOptions) -> Result<Self, QrError> {
        // At most 177 (version 40).
        let modules = u32::try_from(modules).unwrap_or(u32::MAX);
        let across = modules.saturating_add(2 * options.margin);
        let module_pixels = options.size / across;
        if module_pixels == 0 {
            return Err(QrError::SizeTooSmall {
                size: options.size,
                modules,
                margin: options.margin,
                needed: across,
            });
        }
        Ok(Self {
            modules,
            margin: options.margin,
            module_pixels,
            offset: (options.size - module_pixels * across) / 2,
            size: options.size,
        })
    }

    /// A renderer of the code and its quiet zone at this module size.
    fn renderer<'a, P: qrcode::render::Pixel>(
        &self,
        colors: &'a [qrcode::Color],
    ) -> Renderer<'a, P> {
        let mut renderer = Renderer::new(colors, self.modules as usize, self.margin);
        renderer.module_dimensions(self.module_pixels, self.module_pixels);
        renderer
    }
}

/// The SVG document: qrcode's drawing (its own `<svg>` with the quiet zone,
/// dark modules as one path, less its XML declaration), placed at the offset
/// on a light square of the full size.
fn draw_svg(colors: &[qrcode::Color], layout: &Layout) -> String {
    let drawn = layout.renderer::<svg::Color<'_>>(colors).build();
    let drawn = drawn
        .find("<svg")
        .map_or(drawn.as_str(), |start| &drawn[start..]);
    let (size, offset) = (layout.size, layout.offset);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1""#,
            r#" width="{size}" height="{size}" viewBox="0 0 {size} {size}""#,
            r#" shape-rendering="crispEdges">"#,
            r##"<rect x="0" y="0" width="{size}" height="{size}" fill="#fff"/>"##,
            r#"<g transform="translate({offset} {offset})">{drawn}</g></svg>"#,
        ),
        size = size,
        offset = offset,
        drawn = drawn,
    )
}

/// The PNG: 8-bit grey, qrcode's drawing copied at the offset onto a light
/// square of the full size.
fn draw_png(colors: &[qrcode::Color], layout: &Layout) -> Result<Vec<u8>, QrError> {
    let drawn = layout.renderer::<Luma<u8>>(colors).build();
    let mut image = GrayImage::from_pixel(layout.size, layout.size, Luma([255]));
    let offset = i64::from(layout.offset);
    image::imageops::replace(&mut image, &drawn, offset, offset);
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(
            image.as_raw(),
            layout.size,
            layout.size,
            ExtendedColorType::L8,
        )
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://localhost/abc1234";

    fn parse(pairs: &[(&str, &str)]) -> Result<QrOptions, QrError> {
        let value = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        QrOptions::parse(&RequestedOptions {
            format: value("format"),
            size: value("size"),
            margin: value("margin"),
            ecc: value("ecc"),
        })
    }

    fn qr_options(format: QrFormat, size: u32, margin: u32, ecc: ErrorCorrection) -> QrOptions {
        QrOptions {
            format,
            size,
            margin,
            ecc,
        }
    }

    /// The text a PNG's code carries, and the image's size.
    fn decode(png: &[u8]) -> (String, (u32, u32)) {
        let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        let dimensions = image.dimensions();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "one code in the image");
        let (_, text) = grids[0].decode().unwrap();
        (text, dimensions)
    }

    #[test]
    fn absent_and_empty_values_take_the_defaults() {
        let defaults = QrOptions {
            format: QrFormat::Svg,
            size: 512,
            margin: 4,
            ecc: ErrorCorrection::Medium,
        };
        assert_eq!(parse(&[]), Ok(defaults));
        assert_eq!(QrOptions::default(), defaults);
        let empty = [("format", ""), ("size", ""), ("margin", ""), ("ecc", "")];
        assert_eq!(parse(&empty), Ok(defaults));
    }

    #[test]
    fn values_in_range_are_read() {
        let cases = [
            (
                [
                    ("format", "png"),
                    ("size", "64"),
                    ("margin", "0"),
                    ("ecc", "L"),
                ],
                qr_options(QrFormat::Png, 64, 0, ErrorCorrection::Low),
            ),
            (
                [
                    ("format", "SVG"),
                    ("size", "4096"),
                    ("margin", "16"),
                    ("ecc", "h"),
                ],
                qr_options(QrFormat::Svg, 4096, 16, ErrorCorrection::High),
            ),
            (
                [
                    ("format", "Png"),
                    ("size", "300"),
                    ("margin", "2"),
                    ("ecc", "Q"),
                ],
                qr_options(QrFormat::Png, 300, 2, ErrorCorrection::Quartile),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(parse(&pairs), Ok(expected), "{pairs:?}");
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        for (name, value) in [
            ("format", "jpeg"),
            ("format", " svg"),
            ("size", "63"),
            ("size", "4097"),
            ("size", "10"),
            ("size", "-1"),
            ("size", "1.5"),
            ("size", "big"),
            ("size", "99999999999999999999"),
            ("margin", "17"),
            ("margin", "99"),
            ("margin", "-1"),
            ("margin", "four"),
            ("ecc", "X"),
            ("ecc", "medium"),
            ("ecc", "LL"),
        ] {
            let error = parse(&[(name, value)]).unwrap_err();
            assert_eq!(error.field(), Some(name), "{name}={value}: {error}");
            let message = error.to_string();
            assert!(message.starts_with(name), "{message}");
            assert!(message.contains(&format!("{value:?}")), "{message}");
        }
        assert_eq!(
            parse(&[("size", "10")]).unwrap_err().to_string(),
            "size must be a whole number of pixels from 64 to 4096, not \"10\""
        );
    }

    #[test]
    fn png_is_exactly_the_size_asked_for_and_reads_back() {
        for size in [64, 100, 300, 333, 512, 1000] {
            for margin in [0, 2, 4, 16] {
                for ecc in [ErrorCorrection::Low, ErrorCorrection::High] {
                    let options = qr_options(QrFormat::Png, size, margin, ecc);
                    let png = render(URL, &options).unwrap();
                    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
                    let (text, dimensions) = decode(&png);
                    assert_eq!(dimensions, (size, size), "{options:?}");
                    assert_eq!(text, URL, "{options:?}");
                }
            }
        }
    }

    #[test]
    fn the_code_is_centred_in_whole_pixels_per_module() {
        // 24 bytes at M: version 2, 25 modules; with 2 on each side, 29
        // across: 10 pixels a module, 290 drawn, 5 light pixels each side.
        let code = QrCode::with_error_correction_level(URL, EcLevel::M).unwrap();
        assert_eq!(code.width(), 25);
        let options = qr_options(QrFormat::Png, 300, 2, ErrorCorrection::Medium);
        let layout = Layout::new(25, &options).unwrap();
        assert_eq!(
            layout,
            Layout {
                modules: 25,
                margin: 2,
                module_pixels: 10,
                offset: 5,
                size: 300,
            }
        );
        let image = image::load_from_memory(&render(URL, &options).unwrap())
            .unwrap()
            .to_luma8();
        // The finder pattern's corner starts after the offset and the margin.
        let start = 5 + 2 * 10;
        assert_eq!(image.get_pixel(start - 1, start).0, [255]);
        assert_eq!(image.get_pixel(start, start).0, [0]);
        assert_eq!(image.get_pixel(start + 69, start).0, [0], "7 modules dark");
        assert_eq!(image.get_pixel(start + 70, start).0, [255]);
        for corner in [(0, 0), (299, 0), (0, 299), (299, 299)] {
            assert_eq!(image.get_pixel(corner.0, corner.1).0, [255], "{corner:?}");
        }
        // An odd leftover puts the extra light pixel right and below.
        let odd = Layout::new(
            25,
            &qr_options(QrFormat::Png, 301, 2, ErrorCorrection::Medium),
        );
        assert_eq!(odd.unwrap().offset, 5);
    }

    #[test]
    fn svg_has_the_size_a_view_box_and_crisp_edges() {
        let options = qr_options(QrFormat::Svg, 300, 2, ErrorCorrection::Medium);
        let svg = String::from_utf8(render(URL, &options).unwrap()).unwrap();
        assert!(
            svg.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><svg "#),
            "{svg}"
        );
        assert_eq!(svg.matches("<?xml").count(), 1, "{svg}");
        let start = svg.find("<svg ").unwrap();
        let root = &svg[start..start + svg[start..].find('>').unwrap()];
        for attribute in [
            r#"width="300""#,
            r#"height="300""#,
            r#"viewBox="0 0 300 300""#,
            r#"shape-rendering="crispEdges""#,
            r#"xmlns="http://www.w3.org/2000/svg""#,
        ] {
            assert!(root.contains(attribute), "{attribute} in {root}");
        }
        // qrcode's drawing: 29 modules of 10 pixels, 5 pixels in.
        assert!(
            svg.contains(r#"<g transform="translate(5 5)"><svg "#),
            "{svg}"
        );
        assert!(svg.contains(r#"viewBox="0 0 290 290""#), "{svg}");
        assert!(svg.contains(r##"<path fill="#000" d="M"##), "{svg}");
        assert!(svg.ends_with("</svg></g></svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 2);
        assert_eq!(svg.matches("</svg>").count(), 2);
    }

    #[test]
    fn text_too_long_for_any_code_is_an_error() {
        let long = "x".repeat(3000);
        for ecc in [ErrorCorrection::Low, ErrorCorrection::High] {
            let error = render(&long, &qr_options(QrFormat::Png, 512, 4, ecc)).unwrap_err();
            assert_eq!(error, QrError::TextTooLong { bytes: 3000, ecc });
            assert_eq!(error.field(), None);
        }
        // What fits at L may not at H.
        let medium = "x".repeat(2000);
        assert!(
            render(
                &medium,
                &qr_options(QrFormat::Svg, 4096, 4, ErrorCorrection::Low)
            )
            .is_ok()
        );
        assert!(matches!(
            render(
                &medium,
                &qr_options(QrFormat::Svg, 4096, 4, ErrorCorrection::High)
            ),
            Err(QrError::TextTooLong { .. })
        ));
    }

    #[test]
    fn a_size_smaller_than_the_code_is_refused_not_overflowed() {
        let text = format!("https://example.com/{}", "x".repeat(300));
        let error = render(
            &text,
            &qr_options(QrFormat::Png, 64, 4, ErrorCorrection::High),
        )
        .unwrap_err();
        let QrError::SizeTooSmall { needed, .. } = error else {
            panic!("{error:?}");
        };
        assert!(needed > 64, "{needed}");
        assert_eq!(error.field(), Some("size"));
        let smallest = qr_options(QrFormat::Png, needed, 4, ErrorCorrection::High);
        let png = image::load_from_memory(&render(&text, &smallest).unwrap()).unwrap();
        assert_eq!((png.width(), png.height()), (needed, needed));
        let larger = qr_options(QrFormat::Png, needed * 4, 4, ErrorCorrection::High);
        assert_eq!(decode(&render(&text, &larger).unwrap()).0, text);
    }

    #[test]
    fn options_built_in_code_are_checked_too() {
        let huge = qr_options(QrFormat::Png, 100_000, 4, ErrorCorrection::Medium);
        assert_eq!(render(URL, &huge), Err(QrError::Size("100000".into())));
        let wide = qr_options(QrFormat::Svg, 512, 17, ErrorCorrection::Medium);
        assert_eq!(render(URL, &wide), Err(QrError::Margin("17".into())));
    }
}
