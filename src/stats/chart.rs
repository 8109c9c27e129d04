//! Charts of published tables as SVG (plotters' SVG backend: no fonts, no
//! JavaScript): one horizontal bar per row, stacked by column (sex), drawn
//! from the published cells only. A row with a hidden cell shows the mark
//! after its bar instead of a length.

use plotters::prelude::*;

use super::report::{Cell, Table};

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x7b, 0x3f, 0x98),
    RGBColor(0x2a, 0x9d, 0x8f),
    RGBColor(0xe9, 0xc4, 0x6a),
    RGBColor(0x90, 0x90, 0x90),
    RGBColor(0xe7, 0x6f, 0x51),
    RGBColor(0x26, 0x46, 0x53),
];

/// The table as an SVG document, labels in `language`.
pub fn svg(table: &Table, language: &str, mark: &str) -> Result<String, String> {
    let rows = table.rows.len().max(1);
    let height = u32::try_from(80 + rows * 34).unwrap_or(800);
    let longest = table
        .rows
        .iter()
        .map(|r| r.text(language).chars().count())
        .max()
        .unwrap_or(10);
    let label_width = u32::try_from(longest * 7 + 20).unwrap_or(300).min(420);
    let widest = table
        .cells
        .iter()
        .map(|line| line.iter().filter_map(Cell::count).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let x_max = widest as f64 * 1.15 + 1.0;
    let title = if language == "en" {
        &table.en
    } else {
        &table.vi
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (960, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0f64..x_max, (0..rows).into_segmented())
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = table
            .rows
            .iter()
            .map(|r| r.text(language).to_owned())
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_formatter(&|value| match value {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (c, column) in table.columns.iter().enumerate() {
            let colour = COLOURS.get(c % COLOURS.len()).copied().unwrap_or(BLACK);
            let bars: Vec<Rectangle<(f64, SegmentValue<usize>)>> = table
                .cells
                .iter()
                .enumerate()
                .filter_map(|(r, line)| {
                    let before: u64 = line.iter().take(c).filter_map(Cell::count).sum();
                    let value = line.get(c)?.count()?;
                    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                    let (start, end) = (before as f64, (before + value) as f64);
                    let mut bar = Rectangle::new(
                        [
                            (start, SegmentValue::Exact(r)),
                            (end, SegmentValue::Exact(r + 1)),
                        ],
                        colour.filled(),
                    );
                    bar.set_margin(6, 6, 0, 0);
                    Some(bar)
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(column.text(language))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        let marks: Vec<Text<'_, (f64, SegmentValue<usize>), String>> = table
            .cells
            .iter()
            .enumerate()
            .filter(|(_, line)| line.iter().any(|cell| cell.count().is_none()))
            .map(|(r, line)| {
                let shown: u64 = line.iter().filter_map(Cell::count).sum();
                #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let at = shown as f64 + x_max * 0.01;
                Text::new(
                    format!("+ {mark}"),
                    (at, SegmentValue::CenterOf(r)),
                    ("sans-serif", 13).into_font(),
                )
            })
            .collect();
        chart.draw_series(marks).map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
