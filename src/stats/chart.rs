//! Charts of published tables as SVG (plotters' SVG backend: no fonts, no
//! JavaScript): one horizontal bar per row, stacked by column (sex), drawn
//! from the published cells only. Drawn for a phone (issue 20): 480 units
//! wide, so that on a 390 px screen its 16-unit labels stay about 12 px; the legend in its own band under the chart, never over a bar. A
//! hidden cell is never a length: the row's bar ends with an outlined,
//! unfilled box and the suppression mark, so a shorter bar is never read as
//! a smaller total.

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

/// The drawing's width: a phone's, not a desktop's.
const WIDTH: u32 = 480;

/// The outline of a hidden cell's box (5.7:1 on white).
const HIDDEN: RGBColor = RGBColor(0x59, 0x59, 0x59);

/// The table as an SVG document, labels in `language`.
pub fn svg(table: &Table, language: &str, mark: &str) -> Result<String, String> {
    let rows = table.rows.len().max(1);
    let legend_rows = u32::try_from(table.columns.len().div_ceil(2)).unwrap_or(3);
    let legend_height = 12 + legend_rows * 28;
    let chart_height = u32::try_from(70 + rows * 34).unwrap_or(800);
    let height = chart_height + legend_height;
    let longest = table
        .rows
        .iter()
        .map(|r| r.text(language).chars().count())
        .max()
        .unwrap_or(10);
    let label_width = u32::try_from(longest * 9 + 16).unwrap_or(200).min(200);
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
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, legend) = root.split_vertically(chart_height);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 22))
            .margin(8)
            .x_label_area_size(26)
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
            .label_style(("sans-serif", 20))
            .x_labels(4)
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
            chart.draw_series(bars).map_err(|e| e.to_string())?;
            // The legend's entry, in its band: two to a line.
            let (col, line) = (
                i32::try_from(c % 2).unwrap_or(0),
                i32::try_from(c / 2).unwrap_or(0),
            );
            let (x, y) = (12 + col * 230, 10 + line * 28);
            legend
                .draw(&Rectangle::new([(x, y), (x + 16, y + 16)], colour.filled()))
                .map_err(|e| e.to_string())?;
            legend
                .draw(&Text::new(
                    column.text(language).to_owned(),
                    (x + 22, y),
                    ("sans-serif", 20).into_font(),
                ))
                .map_err(|e| e.to_string())?;
        }
        let hidden_width = x_max * 0.08;
        // The rows with a hidden cell, and where their shown bar ends.
        let partial: Vec<(usize, f64)> = table
            .cells
            .iter()
            .enumerate()
            .filter(|(_, line)| line.iter().any(|cell| cell.count().is_none()))
            .map(|(r, line)| {
                let shown: u64 = line.iter().filter_map(Cell::count).sum();
                #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let end = shown as f64;
                (r, end)
            })
            .collect();
        let boxes: Vec<Rectangle<(f64, SegmentValue<usize>)>> = partial
            .iter()
            .map(|&(r, start)| {
                let mut hidden = Rectangle::new(
                    [
                        (start, SegmentValue::Exact(r)),
                        (start + hidden_width, SegmentValue::Exact(r + 1)),
                    ],
                    HIDDEN.stroke_width(2),
                );
                hidden.set_margin(6, 6, 0, 0);
                hidden
            })
            .collect();
        chart.draw_series(boxes).map_err(|e| e.to_string())?;
        let marks: Vec<Text<'_, (f64, SegmentValue<usize>), String>> = partial
            .iter()
            .map(|&(r, start)| {
                Text::new(
                    mark.to_owned(),
                    (
                        start + hidden_width + x_max * 0.01,
                        SegmentValue::CenterOf(r),
                    ),
                    ("sans-serif", 20).into_font(),
                )
            })
            .collect();
        chart.draw_series(marks).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::report::Label;

    #[test]
    fn a_hidden_cell_is_an_outlined_box_with_the_mark_never_a_length() {
        let table = Table {
            code: "t".into(),
            vi: "Bảng".into(),
            en: "Table".into(),
            unit: "cases".into(),
            rows: vec![
                Label::new("a", "Hàng A", "Row A"),
                Label::new("b", "Hàng B", "Row B"),
            ],
            columns: vec![
                Label::new("f", "Nữ", "Female"),
                Label::new("m", "Nam", "Male"),
            ],
            cells: vec![
                vec![Cell::Count(12), Cell::Count(9)],
                vec![Cell::Count(11), Cell::Hidden("<5".into())],
            ],
            row_totals: vec![Cell::Count(21), Cell::Hidden("<5".into())],
            column_totals: vec![Cell::Hidden("<5".into()), Cell::Hidden("<5".into())],
            total: Cell::Hidden("<5".into()),
        };
        let svg = svg(&table, "vi", "ẩn").unwrap();
        assert!(svg.contains("width=\"480\""), "{svg}");
        // One mark, for the one row with a hidden cell.
        assert_eq!(svg.matches("ẩn").count(), 1, "{svg}");
        // Its box: outlined, not filled.
        assert!(svg.contains("stroke=\"#595959\""), "{svg}");
        // The legend: both columns, below the bars.
        assert!(svg.contains("Nữ") && svg.contains("Nam"), "{svg}");
        // Labels large enough to read on a phone.
        assert!(!svg.contains("font-size=\"11."), "{svg}");
    }
}
