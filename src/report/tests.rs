use std::collections::HashSet;
use std::path::Path;

use super::canvas::{base64, dash_pieces};
use super::chart::{clip_polygon, clip_polyline, Rect};
use super::*;

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("valid PNG").to_rgb8()
}

fn distinct_colors(img: &image::RgbImage) -> usize {
    img.pixels().map(|p| p.0).collect::<HashSet<_>>().len()
}

fn count_near(img: &image::RgbImage, c: Rgb, tol: i32) -> usize {
    img.pixels()
        .filter(|p| {
            (p.0[0] as i32 - c.0 as i32).abs() <= tol
                && (p.0[1] as i32 - c.1 as i32).abs() <= tol
                && (p.0[2] as i32 - c.2 as i32).abs() <= tol
        })
        .count()
}

fn xs(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

fn prediction_plot() -> LinePlot {
    let x: Vec<f64> = (1..=20).map(|i| 2.0 * i as f64).collect();
    let y: Vec<f64> = x.iter().map(|x| (-x / 15.0f64).exp()).collect();
    let p: Vec<f64> = y.iter().map(|y| y * 1.05).collect();
    let lo: Vec<f64> = p.iter().map(|v| v - 0.05).collect();
    let hi: Vec<f64> = p.iter().map(|v| v + 0.05).collect();
    LinePlot::new()
        .title("Prediction <test>")
        .x_label("time t")
        .y_label("x(t)")
        .x_span(2.0, 24.0, "training region")
        .line("ground truth", &x, &y)
        .series(Series::new("LSTM prediction", &x, &p).dashed())
        .band("spread over seeds", &x, &lo, &hi)
        .vline(24.0, "")
}

#[test]
fn line_plot_png_is_valid_and_not_blank() {
    let png = prediction_plot().to_png().unwrap();
    let img = decode(&png);
    assert_eq!(img.dimensions(), (900, 560));
    assert!(distinct_colors(&img) > 50, "only {} colours", distinct_colors(&img));
    // The shaded training region is the light red of axvspan(alpha=0.25, color='red').
    let span = count_near(&img, Rgb::RED.over_white(0.25), 6);
    assert!(span > 10_000, "span pixels: {span}");
    // Both line colours are present.
    assert!(count_near(&img, OKABE_ITO[0], 20) > 300);
    assert!(count_near(&img, OKABE_ITO[1], 30) > 150);
}

#[test]
fn line_plot_svg_has_names_and_escapes_them() {
    let svg = prediction_plot().to_svg().unwrap();
    assert!(svg.starts_with("<svg "));
    assert!(svg.trim_end().ends_with("</svg>"));
    for name in ["ground truth", "LSTM prediction", "spread over seeds", "training region", "time t"] {
        assert!(svg.contains(name), "missing {name}");
    }
    assert!(svg.contains("Prediction &lt;test&gt;"));
    assert!(!svg.contains("<test>"));
    assert!(svg.contains("stroke-dasharray"), "dashed prediction");
}

#[test]
fn nan_inf_and_empty_series_do_not_panic() {
    let x = [0.0, 1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0];
    let y = [1.0, f64::NAN, 3.0, f64::INFINITY, 2.0, 1.0, f64::NEG_INFINITY];
    let plots = [
        LinePlot::new().line("bad", &x, &y).band("b", &x, &y, &y),
        LinePlot::new().line("empty", &[], &[]),
        LinePlot::new(),
        LinePlot::new().line("all nan", &[f64::NAN; 3], &[f64::NAN; 3]).log_y(true),
        LinePlot::new().series(Series::new("one point", &[1.0], &[2.0]).markers()),
        LinePlot::new().line("huge", &[0.0, 1.0, 2.0], &[-1e308, 1e308, f64::MAX]),
        LinePlot::new().line("const", &[1.0, 1.0], &[5.0, 5.0]),
    ];
    for p in &plots {
        let img = decode(&p.to_png().unwrap());
        assert_eq!(img.dimensions(), (900, 560));
        assert!(p.to_svg().unwrap().contains("</svg>"));
    }
    // The empty plot says so.
    assert!(LinePlot::new().line("e", &[], &[]).to_svg().unwrap().contains("no finite data"));
    let s = ScatterPlot::new()
        .points(&[f64::NAN, 1.0, 2.0], &[0.0, f64::INFINITY, 1.0])
        .color_by_value(&[1.0, 2.0, f64::NAN], "T");
    decode(&s.to_png().unwrap());
    let s = ScatterPlot::new().points(&[], &[]).color_by_class(&[]);
    decode(&s.to_png().unwrap());
    s.to_svg().unwrap();
}

#[test]
fn log_axis_with_zeros_and_negatives() {
    let e = xs(50);
    let loss: Vec<f64> = e.iter().map(|&e| if e < 3.0 { 0.0 } else { 0.5 * (-e / 5.0).exp() }).collect();
    let val: Vec<f64> = e.iter().map(|&e| if e == 10.0 { -1.0 } else { 0.6 * (-e / 6.0).exp() }).collect();
    let p = LinePlot::new().log_y(true).line("train", &e, &loss).line("val", &e, &val);
    let svg = p.to_svg().unwrap();
    // Decade tick labels in compact scientific notation, no long decimals.
    assert!(svg.contains(">1e-4<"), "log tick labels missing");
    assert!(!svg.contains("0.0001"));
    decode(&p.to_png().unwrap());
    // Only non-positive values: falls back to linear and still draws.
    let p = LinePlot::new().log_y(true).line("z", &[0.0, 1.0, 2.0], &[0.0, -1.0, 0.0]);
    let svg = p.to_svg().unwrap();
    assert!(svg.contains("<polyline"));
    assert!(!svg.contains("no finite data"));
    // A band whose lower bound is zero on a log axis still draws (down to the bottom edge).
    let p = LinePlot::new().log_y(true).band("b", &[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0], &[1.0, 2.0, 3.0]);
    assert!(p.to_svg().unwrap().contains("<polygon"));
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let e = LinePlot::new().line("a", &[1.0, 2.0], &[1.0]).to_png().unwrap_err();
    assert!(e.to_string().contains("\"a\""), "{e}");
    assert!(LinePlot::new().x_range(1.0, 1.0).to_svg().is_err());
    assert!(LinePlot::new().log_y(true).y_range(0.0, 1.0).to_svg().is_err());
    assert!(LinePlot::new().size(10, 10).to_png().is_err());
    assert!(ScatterPlot::new().points(&[1.0], &[1.0, 2.0]).to_svg().is_err());
    assert!(ScatterPlot::new().points(&[1.0], &[1.0]).color_by_class(&[1, 2]).to_svg().is_err());
    assert!(ImageGrid::new(1, 1, 2, 2).push(&[0.0; 3]).to_png().is_err());
    assert!(ImageGrid::new(1, 1, 2, 2).image(1, 0, &[0.0; 4]).to_png().is_err());
    assert!(ImageGrid::new(1, 1, 2, 2).push(&[0.0; 4]).push(&[0.0; 4]).to_png().is_err());
    assert!(ImageGrid::new(0, 1, 2, 2).to_svg().is_err());
    assert!(ImageGrid::new(1, 1, 2, 2).value_range(1.0, 0.0).to_svg().is_err());
}

#[test]
fn fixed_ranges_clip_the_data() {
    let x = xs(100);
    let y: Vec<f64> = x.iter().map(|v| v * v).collect();
    let svg = LinePlot::new().x_range(10.0, 20.0).y_range(0.0, 300.0).line("sq", &x, &y).to_svg().unwrap();
    // Every polyline point lies within the canvas.
    for part in svg.split("points=\"").skip(1) {
        let pts = &part[..part.find('"').unwrap()];
        for xy in pts.split(' ') {
            let (a, b) = xy.split_once(',').unwrap();
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((0.0..=900.0).contains(&a) && (0.0..=560.0).contains(&b), "{a},{b}");
        }
    }
}

#[test]
fn scatter_by_value_and_by_class() {
    let n = 300;
    let t: Vec<f64> = (0..n).map(|i| 1.0 + 3.0 * i as f64 / n as f64).collect();
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * t[i]).collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.91).cos()).collect();
    let p = ScatterPlot::new().title("by T").points(&x, &y).color_by_value(&t, "temperature T");
    let img = decode(&p.to_png().unwrap());
    assert_eq!(img.dimensions(), (900, 560));
    // Both ends of viridis appear (points and colour bar).
    assert!(count_near(&img, viridis(0.0), 12) > 50);
    assert!(count_near(&img, viridis(1.0), 12) > 50);
    assert!(p.to_svg().unwrap().contains("temperature T"));

    let cls: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
    let p = ScatterPlot::new().points(&x, &y).color_by_class(&cls).class_names(&["zero", "one"]);
    let svg = p.to_svg().unwrap();
    assert!(svg.contains(">zero<") && svg.contains(">one<") && svg.contains(">9<"));
    let img = decode(&p.to_png().unwrap());
    for c in TABLEAU10 {
        assert!(count_near(&img, c, 25) > 20, "class colour {c:?} missing");
    }
}

#[test]
fn image_grid_maps_values_to_gray() {
    let white = vec![1.0; 64];
    let black = vec![0.0; 64];
    let mut nan = vec![0.5; 64];
    nan[0] = f64::NAN;
    let g = ImageGrid::new(2, 2, 8, 8).row_labels(&["original", "reconstruction"]).value_range(0.0, 1.0);
    let g = g.push(&white).push(&black).push(&nan);
    let png = g.to_png().unwrap();
    let img = decode(&png);
    let (w, h) = img.dimensions();
    assert!(w > 2 * 80 && h > 2 * 80, "{w}x{h}");
    // 80 px per image (8 px x 10): the black cell holds ~80*80 black pixels.
    let blacks = count_near(&img, Rgb::BLACK, 2);
    assert!((6000..=6600).contains(&blacks), "black pixels: {blacks}");
    let mids = count_near(&img, Rgb(128, 128, 128), 2);
    assert!((6000..=6400).contains(&mids), "mid-gray pixels: {mids}");
    assert!(count_near(&img, Rgb(230, 60, 60), 3) >= 90, "NaN pixel not flagged");
    let svg = g.to_svg().unwrap();
    assert!(svg.contains("reconstruction"));
    assert_eq!(svg.matches("data:image/png;base64,").count(), 3 * 2, "3 images, href twice");
    // Inverted map: value 1 is black.
    let inv = ImageGrid::new(1, 1, 8, 8).value_range(0.0, 1.0).gray_map(GrayMap::Inverted).push(&white);
    assert!(count_near(&decode(&inv.to_png().unwrap()), Rgb::BLACK, 2) >= 6400);
}

#[test]
fn write_creates_both_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("figs");
    prediction_plot().write(&sub, "pred").unwrap();
    let png = std::fs::read(sub.join("pred.png")).unwrap();
    assert_eq!(decode(&png).dimensions(), (900, 560));
    let svg = std::fs::read_to_string(sub.join("pred.svg")).unwrap();
    assert!(svg.contains("ground truth"));
    let names: Vec<String> =
        std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for bad in ["", "a/b", "..", "x\\y"] {
        assert!(prediction_plot().write(&sub, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn html_escapes_text_and_embeds_figures() {
    let mut r = Report::new("Run <1> & \"friends\"");
    r.heading("<script>alert(1)</script>")
        .paragraph("x < y && y > z <script>evil()</script>")
        .preformatted("lr = 1e-3\n<b>")
        .table(
            &["model", "MSE", "<th>"],
            &[vec!["LSTM".into(), fmt_sci(5.12e-5), "<td>".into()], vec!["GRU".into(), fmt_sci(f64::NAN)]],
        );
    r.plot("loss & accuracy", &prediction_plot()).unwrap();
    let png = ImageGrid::new(1, 1, 2, 2).push(&[0.0, 1.0, 1.0, 0.0]).to_png().unwrap();
    r.figure("grid", FigureContent::png(png));
    r.figure("foreign", FigureContent::svg("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>x()</script></svg>"));
    let h = r.to_html();
    assert!(!h.contains("<script"), "unescaped script");
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(h.contains("Run &lt;1&gt; &amp; &quot;friends&quot;"));
    assert!(h.contains("x &lt; y &amp;&amp; y &gt; z"));
    assert!(h.contains("&lt;th&gt;") && h.contains("&lt;td&gt;"));
    assert!(h.contains("<td class=\"num\">5.12e-5</td>"), "numbers right-aligned");
    assert!(h.contains("<td class=\"num\">—</td>"));
    assert!(h.contains("<td>LSTM</td>"));
    assert!(h.contains("<svg "), "inline SVG figure");
    assert!(h.contains("ground truth"));
    assert!(h.contains("data:image/png;base64,iVBORw0KGgo"), "PNG data URI");
    assert!(h.contains("data:image/svg+xml;base64,"), "foreign SVG as image");
    assert!(h.contains("loss &amp; accuracy"));
    assert!(!h.contains("<link") && !h.contains("src=\"http"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/report.html");
    r.write(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), h);
}

#[test]
fn number_formatting() {
    assert_eq!(fmt_sci(5.1234e-5), "5.12e-5");
    assert_eq!(fmt_sci(-320.0), "-3.20e2");
    assert_eq!(fmt_sci(1.0), "1.00e0");
    assert_eq!(fmt_sci(0.0), "0");
    assert_eq!(fmt_sci(f64::NAN), "—");
    assert_eq!(fmt_sci(f64::NEG_INFINITY), "-inf");
    assert_eq!(fmt_sci_opt(None), "—");
    assert_eq!(fmt_sci_opt(Some(2.5e10)), "2.50e10");
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases =
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
    for (i, o) in cases {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

#[test]
fn dashes_and_clipping() {
    let line = [(0.0, 0.0), (100.0, 0.0)];
    let pieces = dash_pieces(&line, 2.0, Dash::Dashed);
    assert!(pieces.len() >= 8 && pieces.len() <= 11, "{}", pieces.len());
    assert!(pieces.iter().all(|p| p.len() >= 2));
    let dots = dash_pieces(&line, 2.0, Dash::Dotted);
    assert!(dots.len() > 10 && dots.iter().all(|p| p.len() == 1));
    assert_eq!(dash_pieces(&line, 2.0, Dash::Solid), vec![line.to_vec()]);

    let r = Rect { x0: 0.0, y0: 0.0, x1: 10.0, y1: 10.0 };
    let c = clip_polyline(&[(-5.0, 5.0), (5.0, 5.0), (5.0, 20.0), (8.0, 20.0), (8.0, 5.0)], &r);
    assert_eq!(c, vec![vec![(0.0, 5.0), (5.0, 5.0), (5.0, 10.0)], vec![(8.0, 10.0), (8.0, 5.0)]]);
    let poly = clip_polygon(&[(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)], &r);
    assert_eq!(poly.len(), 4);
    assert!(poly.iter().all(|&(x, y)| (0.0..=5.0).contains(&x) && (0.0..=5.0).contains(&y)));
}

#[test]
fn legend_avoids_the_data() {
    // A decreasing curve: the upper-right corner is free, the legend goes there (inside).
    let x = xs(40);
    let y: Vec<f64> = x.iter().map(|v| 40.0 - v).collect();
    let svg = LinePlot::new().line("decreasing", &x, &y).to_svg().unwrap();
    let legend_x = svg_text_x(&svg, "decreasing");
    assert!(legend_x > 600.0 && legend_x < 880.0, "legend at x = {legend_x}");
    let legend_y = svg_text_y(&svg, "decreasing");
    assert!(legend_y < 150.0, "legend at y = {legend_y}");
    // A curve filling every corner: the legend goes outside, right of the plot frame.
    let x: Vec<f64> = (0..400).map(|i| i as f64 * 0.1).collect();
    let y: Vec<f64> = x.iter().map(|v| (v * 7.3).sin()).collect();
    let svg = LinePlot::new().line("wiggly", &x, &y).to_svg().unwrap();
    let frame_right = svg_frame_right(&svg);
    assert!(svg_text_x(&svg, "wiggly") > frame_right, "legend inside the frame");
}

fn svg_text_attr(svg: &str, text: &str, attr: &str) -> f64 {
    let end = svg.find(&format!(">{text}</text>")).expect("text present");
    let start = svg[..end].rfind("<text ").unwrap();
    let tag = &svg[start..end];
    let i = tag.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
    tag[i..i + tag[i..].find('"').unwrap()].parse().unwrap()
}

fn svg_text_x(svg: &str, text: &str) -> f64 {
    svg_text_attr(svg, text, "x")
}

fn svg_text_y(svg: &str, text: &str) -> f64 {
    svg_text_attr(svg, text, "y")
}

/// Right edge of the plot frame: the rightmost 1-px-wide rect in the axis colour.
fn svg_frame_right(svg: &str) -> f64 {
    let line = svg
        .lines()
        .filter(|l| l.contains("width=\"1\"") && l.contains("fill=\"#333333\""))
        .max_by_key(|l| svg_attr(l, "x") as i64)
        .unwrap();
    svg_attr(line, "x") + 1.0
}

fn svg_attr(line: &str, a: &str) -> f64 {
    let i = line.find(&format!(" {a}=\"")).unwrap() + a.len() + 3;
    line[i..i + line[i..].find('"').unwrap()].parse().unwrap()
}

/// Renders the demo figures into `$MEMCELL_REPORT_DEMO` (default /tmp/report-demo) for a
/// person to look at: `cargo test --release --lib report::tests::demo -- --ignored`.
#[test]
#[ignore]
fn demo() {
    let dir = std::env::var("MEMCELL_REPORT_DEMO").unwrap_or_else(|_| "/tmp/report-demo".into());
    let dir = Path::new(&dir);
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);

    // Loss curves over 6 decades.
    let epochs: Vec<f64> = (1..=300).map(|e| e as f64).collect();
    let train: Vec<f64> =
        epochs.iter().map(|e| 0.3 * (-e / 30.0f64).exp() + 2e-6 * (1.0 + 0.3 * rng.gen::<f64>())).collect();
    let val: Vec<f64> =
        epochs.iter().map(|e| 0.35 * (-e / 32.0f64).exp() + 8e-6 * (1.0 + 0.5 * rng.gen::<f64>())).collect();
    let loss = LinePlot::new()
        .title("Training history")
        .x_label("epoch")
        .y_label("loss (MSE)")
        .log_y(true)
        .line("training loss", &epochs, &train)
        .line("validation loss", &epochs, &val);
    loss.write(dir, "loss").unwrap();

    // Prediction: 20 points x = 2..40, training region [2, 24], dashed prediction + band.
    let x: Vec<f64> = (1..=20).map(|i| 2.0 * i as f64).collect();
    let truth: Vec<f64> = x.iter().map(|x| 1.0 / (1.0 + 0.08 * x) + 0.02 * (x * 0.7).sin()).collect();
    let pred: Vec<f64> =
        x.iter().zip(&truth).map(|(x, t)| t + if *x > 24.0 { 0.004 * (x - 24.0) } else { 0.0 }).collect();
    let spread: Vec<f64> = x.iter().map(|x| if *x > 24.0 { 0.01 + 0.004 * (x - 24.0) } else { 0.008 }).collect();
    let lo: Vec<f64> = pred.iter().zip(&spread).map(|(p, s)| p - s).collect();
    let hi: Vec<f64> = pred.iter().zip(&spread).map(|(p, s)| p + s).collect();
    let prediction = LinePlot::new()
        .title("Order parameter: data vs. LSTM extrapolation")
        .x_label("time step")
        .y_label("magnetisation")
        .x_span(2.0, 24.0, "training region")
        .series(Series::new("data", &x, &truth).markers())
        .series(Series::new("LSTM prediction (mean of 5 seeds)", &x, &pred).dashed())
        .band("±1 std over seeds", &x, &lo, &hi)
        .vline(24.0, "");
    prediction.write(dir, "prediction").unwrap();

    // Latent space coloured by temperature.
    let n = 600;
    let temps: Vec<f64> = (0..n).map(|_| rng.gen_range(1.0..3.5)).collect();
    let zx: Vec<f64> = temps
        .iter()
        .map(|t| {
            let m = if *t < 2.269 { (1.0 - (2.269 - t) / 1.3).max(0.0) } else { 0.0 };
            (1.0 - m) * rng.gen_range(-1.0..1.0) + m * if rng.gen::<bool>() { 1.5 } else { -1.5 }
        })
        .collect();
    let zy: Vec<f64> = temps.iter().map(|t| 0.3 * t + 0.2 * rng.gen_range(-1.0..1.0)).collect();
    let scatter = ScatterPlot::new()
        .title("Autoencoder latent space, 2D Ising 16x16")
        .x_label("z₁")
        .y_label("z₂")
        .points(&zx, &zy)
        .color_by_value(&temps, "temperature T");
    scatter.write(dir, "latent").unwrap();

    let cls: Vec<i64> = (0..n).map(|i| (i % 10) as i64).collect();
    let cx: Vec<f64> = cls.iter().map(|c| (*c as f64 * 0.63).cos() * 3.0 + rng.gen_range(-0.8..0.8)).collect();
    let cy: Vec<f64> = cls.iter().map(|c| (*c as f64 * 0.63).sin() * 3.0 + rng.gen_range(-0.8..0.8)).collect();
    let digits = ScatterPlot::new()
        .title("Digits latent space")
        .x_label("z₁")
        .y_label("z₂")
        .points(&cx, &cy)
        .color_by_class(&cls);
    digits.write(dir, "digits").unwrap();

    // 2 x 10 grid of random 8x8 images in [0, 16].
    let mut grid = ImageGrid::new(2, 10, 8, 8)
        .title("Digits: input vs. reconstruction")
        .row_labels(&["original", "reconstruction"])
        .col_labels(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
        .value_range(0.0, 16.0)
        .gray_map(GrayMap::Inverted);
    let originals: Vec<Vec<f64>> = (0..10).map(|_| (0..64).map(|_| rng.gen_range(0..17) as f64).collect()).collect();
    for o in &originals {
        grid = grid.push(o);
    }
    for o in &originals {
        let r: Vec<f64> = o.iter().map(|v| (v + rng.gen_range(-3.0..3.0)).clamp(0.0, 16.0)).collect();
        grid = grid.push(&r);
    }
    grid.write(dir, "grid").unwrap();

    let mut r = Report::new("memcell demo report");
    r.paragraph(
        "Figures from the report module: a loss curve on a log axis, an extrapolation with the \
         training region shaded, a latent space coloured by temperature and an image grid.",
    );
    r.heading("Training");
    r.plot("Training and validation loss per epoch.", &loss).unwrap();
    r.table(
        &["model", "units", "train MSE", "val MSE", "test MSE", "epochs"],
        &[
            vec!["LSTM".into(), "32".into(), fmt_sci(2.1e-6), fmt_sci(8.8e-6), fmt_sci(1.23e-5), "300".into()],
            vec!["GRU".into(), "32".into(), fmt_sci(3.4e-6), fmt_sci(9.9e-6), fmt_sci(f64::NAN), "300".into()],
            vec!["SimpleRNN".into(), "64".into(), fmt_sci(1.2e-4), fmt_sci(3.1e-4), fmt_sci(5.0e-4), "120".into()],
        ],
    );
    r.heading("Prediction");
    r.plot("LSTM extrapolation beyond the training region (shaded red).", &prediction).unwrap();
    r.heading("Latent space");
    r.plot("Latent coordinates coloured by temperature.", &scatter).unwrap();
    r.plot("Latent coordinates coloured by digit class.", &digits).unwrap();
    r.figure("Input and reconstruction (PNG).", FigureContent::png(grid.to_png().unwrap()));
    r.preformatted("memcell train --config lstm.toml --seed 1\n# <not a tag> & friends");
    r.write(&dir.join("report.html")).unwrap();
}

/// Edge cases rendered for a person to look at (`-- --ignored`): narrow log range, tiny
/// linear values, NaN gaps, empty plot, many series, long labels.
#[test]
#[ignore]
fn demo_edge_cases() {
    let dir = std::env::var("MEMCELL_REPORT_DEMO").unwrap_or_else(|_| "/tmp/report-demo".into());
    let dir = Path::new(&dir).join("edge");
    let x = xs(60);
    let narrow: Vec<f64> = x.iter().map(|v| 0.021 + 0.008 * (-v / 20.0f64).exp()).collect();
    LinePlot::new().title("narrow log range").log_y(true).line("loss", &x, &narrow).write(&dir, "narrow_log").unwrap();
    let tiny: Vec<f64> = x.iter().map(|v| 3e-5 * (v / 10.0).sin() + 4e-5).collect();
    let gaps: Vec<f64> = tiny.iter().enumerate().map(|(i, v)| if i % 13 == 5 { f64::NAN } else { *v }).collect();
    LinePlot::new()
        .title("tiny values, NaN gaps")
        .x_label("x")
        .y_label("gradient norm")
        .series(Series::new("with gaps", &x, &gaps).markers())
        .write(&dir, "tiny")
        .unwrap();
    LinePlot::new().title("empty").x_label("x").y_label("y").line("nothing", &[], &[]).write(&dir, "empty").unwrap();
    let mut many = LinePlot::new().title("eight series and a long legend label").x_label("epoch").y_label("loss");
    for k in 0..8 {
        let y: Vec<f64> =
            x.iter().map(|v| (k as f64 + 1.0) * (-v / 30.0f64).exp() + (v * 0.3 + k as f64).sin() * 0.2).collect();
        many = many.line(format!("seed {k}: LSTM(64) with dropout 0.{k}"), &x, &y);
    }
    many.write(&dir, "many").unwrap();
    let big: Vec<f64> = x.iter().map(|v| 1.0e6 + 2.5e5 * v).collect();
    LinePlot::new().title("large values").line("energy", &big, &big).write(&dir, "large").unwrap();
    let wide: Vec<f64> = x.iter().map(|v| 10f64.powf(-12.0 + v / 4.0)).collect();
    LinePlot::new().title("15 decades").log_y(true).line("w", &x, &wide).write(&dir, "decades").unwrap();
    // Ising configurations: 16x16 spins of +-1, three temperatures.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    use rand::{Rng, SeedableRng};
    let mut g = ImageGrid::new(3, 6, 16, 16)
        .title("Ising 16x16 samples")
        .row_labels(&["T = 1.5", "T = 2.27", "T = 3.5"])
        .value_range(-1.0, 1.0);
    for p_up in [0.97, 0.7, 0.5] {
        for _ in 0..6 {
            let spins: Vec<f64> = (0..256).map(|_| if rng.gen_bool(p_up) { 1.0 } else { -1.0 }).collect();
            g = g.push(&spins);
        }
    }
    g.write(&dir, "ising").unwrap();
}
