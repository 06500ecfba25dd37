//! A self-contained HTML report: one file, figures embedded, no external resources, no JS.

use std::fmt::Write as _;
use std::path::Path;

use super::canvas::{base64, escape_xml};
use super::Plot;
use crate::error::Result;

/// A figure to embed in a [`Report`].
#[derive(Debug, Clone, PartialEq)]
pub struct FigureContent(Inner);

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    /// Produced by this module: trusted markup, put inline.
    InlineSvg(String),
    /// Any SVG document: embedded as an `<img>` data URI, so scripts in it never run.
    SvgImage(String),
    Png(Vec<u8>),
}

impl FigureContent {
    /// An SVG document (e.g. from another tool), embedded as an image.
    pub fn svg(svg: impl Into<String>) -> Self {
        FigureContent(Inner::SvgImage(svg.into()))
    }
    /// PNG file bytes, embedded as a base64 data URI.
    pub fn png(bytes: Vec<u8>) -> Self {
        FigureContent(Inner::Png(bytes))
    }
    pub(crate) fn inline_svg(svg: String) -> Self {
        FigureContent(Inner::InlineSvg(svg))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Block {
    Heading(String),
    Paragraph(String),
    Pre(String),
    Table { header: Vec<String>, rows: Vec<Vec<String>> },
    Figure { caption: String, content: FigureContent },
}

/// An HTML report builder. All text is escaped; figures are embedded (inline SVG for this
/// module's plots, base64 data URIs for PNG and foreign SVG), so the written file is complete
/// on its own.
///
/// ```
/// use memcell::report::{fmt_sci, Report};
/// let mut r = Report::new("LSTM on the damped oscillator");
/// r.heading("Results")
///     .paragraph("Test MSE after 200 epochs, mean over 5 seeds.")
///     .table(&["model", "test MSE"], &[vec!["LSTM(32)".into(), fmt_sci(5.12e-5)]]);
/// let html = r.to_html();
/// assert!(html.contains("5.12e-5"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    title: String,
    blocks: Vec<Block>,
}

const CSS: &str = "\
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1000px;margin:2rem auto;padding:0 1.25rem;line-height:1.55;color:#222;background:#fff;font-size:16px}
h1{font-size:1.75rem;margin:0 0 1rem;padding-bottom:.4rem;border-bottom:1px solid #ddd}
h2{font-size:1.3rem;margin:2.2rem 0 .6rem}
p{margin:.6rem 0}
pre{background:#f5f6f8;border:1px solid #e4e6ea;border-radius:4px;padding:.7rem .9rem;overflow-x:auto;\
font-size:.88rem;line-height:1.4}
code,pre{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace}
.tablewrap{overflow-x:auto;margin:1rem 0}
table{border-collapse:collapse;font-size:.95rem}
th,td{padding:.35rem .8rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
th{background:#f4f5f7;border-bottom:2px solid #c8c8c8;font-weight:600}
tbody tr:nth-child(even){background:#fafafa}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1.6rem 0;text-align:center}
figure svg,figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.93rem;color:#555;margin-top:.5rem}
footer{margin-top:3rem;padding-top:.6rem;border-top:1px solid #eee;font-size:.8rem;color:#888}
";

/// Whether a table cell reads as a number (for right alignment): `1.5`, `-3e-5`, `12%`,
/// `inf`, `nan`.
fn is_number(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    !t.is_empty() && t.parse::<f64>().is_ok()
}

fn is_blank(s: &str) -> bool {
    matches!(s.trim(), "" | "—" | "-" | "–" | "n/a" | "N/A")
}

impl Report {
    /// A report titled `title` (shown as the page title and top heading).
    pub fn new(title: impl Into<String>) -> Self {
        Report { title: title.into(), blocks: Vec::new() }
    }
    /// A section heading.
    pub fn heading(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Heading(text.into()));
        self
    }
    /// A paragraph of plain text (escaped; no markup).
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }
    /// Preformatted text in a monospace block (configs, command lines, logs).
    pub fn preformatted(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Pre(text.into()));
        self
    }
    /// A table. Columns whose cells are all numbers (or blank / `—`) are right-aligned. Rows
    /// shorter than the header are padded with empty cells.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> &mut Self {
        self.blocks.push(Block::Table { header: header.iter().map(|s| s.to_string()).collect(), rows: rows.to_vec() });
        self
    }
    /// A figure with a caption.
    pub fn figure(&mut self, caption: impl Into<String>, content: FigureContent) -> &mut Self {
        self.blocks.push(Block::Figure { caption: caption.into(), content });
        self
    }
    /// Renders `plot` (as inline SVG) and adds it as a figure.
    pub fn plot(&mut self, caption: impl Into<String>, plot: &impl Plot) -> Result<&mut Self> {
        let svg = plot.to_svg()?;
        Ok(self.figure(caption, FigureContent::inline_svg(svg)))
    }

    /// The complete HTML document.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = escape_xml(&self.title);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        let mut fig_no = 0;
        for b in &self.blocks {
            match b {
                Block::Heading(t) => {
                    let _ = writeln!(h, "<h2>{}</h2>", escape_xml(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(h, "<p>{}</p>", escape_xml(t));
                }
                Block::Pre(t) => {
                    let _ = writeln!(h, "<pre>{}</pre>", escape_xml(t));
                }
                Block::Table { header, rows } => write_table(&mut h, header, rows),
                Block::Figure { caption, content } => {
                    fig_no += 1;
                    let cap = escape_xml(caption);
                    h.push_str("<figure>\n");
                    match &content.0 {
                        Inner::InlineSvg(svg) => {
                            let _ = write!(h, "<div role=\"img\" aria-label=\"{cap}\">\n{svg}</div>\n");
                        }
                        Inner::SvgImage(svg) => {
                            let _ = writeln!(
                                h,
                                "<img alt=\"{cap}\" src=\"data:image/svg+xml;base64,{}\">",
                                base64(svg.as_bytes())
                            );
                        }
                        Inner::Png(png) => {
                            let _ = writeln!(h, "<img alt=\"{cap}\" src=\"data:image/png;base64,{}\">", base64(png));
                        }
                    }
                    let _ = writeln!(h, "<figcaption><b>Figure {fig_no}.</b> {cap}</figcaption>\n</figure>");
                }
            }
        }
        let _ = write!(h, "<footer>Generated by memcell {}</footer>\n</body>\n</html>\n", env!("CARGO_PKG_VERSION"));
        h
    }

    /// Writes the HTML document to `path` atomically (creating parent folders).
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.to_html().as_bytes())
    }
}

fn write_table(h: &mut String, header: &[String], rows: &[Vec<String>]) {
    let ncols = rows.iter().map(Vec::len).chain([header.len()]).max().unwrap_or(0);
    let numeric: Vec<bool> = (0..ncols)
        .map(|j| {
            let cells: Vec<&str> = rows.iter().map(|r| r.get(j).map_or("", String::as_str)).collect();
            cells.iter().any(|c| is_number(c)) && cells.iter().all(|c| is_number(c) || is_blank(c))
        })
        .collect();
    let class = |j: usize| if numeric[j] { " class=\"num\"" } else { "" };
    h.push_str("<div class=\"tablewrap\"><table>\n");
    if !header.is_empty() {
        h.push_str("<thead><tr>");
        for j in 0..ncols {
            let _ = write!(h, "<th{}>{}</th>", class(j), escape_xml(header.get(j).map_or("", String::as_str)));
        }
        h.push_str("</tr></thead>\n");
    }
    h.push_str("<tbody>\n");
    for r in rows {
        h.push_str("<tr>");
        for j in 0..ncols {
            let _ = write!(h, "<td{}>{}</td>", class(j), escape_xml(r.get(j).map_or("", String::as_str)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
}
