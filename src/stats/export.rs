//! Exports of a published report, laid out like the office's report
//! tables: a title block, then each table (rows, one column per sex, a
//! total column, a totals row), the KPIs, schools' totals, the plan's
//! indicators and the notes. CSV and XLSX hold the same grid; hidden cells
//! carry the policy's mark. Labels in Vietnamese or English.

use super::report::{Cell, Report};

/// One cell of the exported grid.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Text(String),
    Number(f64),
    Empty,
}

impl Out {
    fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    fn cell(cell: &Cell) -> Self {
        match cell {
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            Cell::Count(n) => Self::Number(*n as f64),
            Cell::Hidden(mark) => Self::Text(mark.clone()),
        }
    }

    /// As written to CSV. Text that a spreadsheet would take for a formula
    /// (an organisation named `=HYPERLINK(…)`, `+…`, `-…`, `@…`, or one
    /// beginning with a tab or carriage return) is written with a leading
    /// apostrophe, as OWASP advises against CSV injection; counts are
    /// numbers and stay as they are.
    pub fn as_csv(&self) -> String {
        match self {
            Self::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                format!("'{text}")
            }
            Self::Text(text) => text.clone(),
            Self::Number(n) if n.fract() == 0.0 => format!("{n:.0}"),
            Self::Number(n) => format!("{n:.1}"),
            Self::Empty => String::new(),
        }
    }
}

fn pick<'a>(language: &str, vi: &'a str, en: &'a str) -> &'a str {
    if language == "en" { en } else { vi }
}

/// The report as a grid of rows.
pub fn grid(report: &Report, language: &str) -> Vec<Vec<Out>> {
    let t = |vi: &str, en: &str| Out::text(pick(language, vi, en));
    let mut rows: Vec<Vec<Out>> = vec![
        vec![
            t("Báo cáo thống kê", "Statistical report"),
            Out::text(&report.area.name),
        ],
        vec![
            t("Kỳ báo cáo", "Period"),
            Out::text(pick(language, &report.period.vi, &report.period.en)),
            Out::text(format!(
                "{} – {}",
                report.period.first_day, report.period.last_day
            )),
        ],
        vec![
            t("Ký hiệu", "Mark"),
            Out::text(&report.suppressed_mark),
            Out::text(pick(
                language,
                &format!(
                    "ô bị ẩn: dưới {} hoặc ẩn thêm để không suy ra được số nhỏ",
                    report.min_count
                ),
                &format!(
                    "hidden: fewer than {}, or hidden so that such a count cannot be worked out",
                    report.min_count
                ),
            )),
        ],
    ];
    if report.rounding_base > 1 {
        rows.push(vec![
            t("Làm tròn", "Rounded to"),
            Out::Number(f64::from(u32::try_from(report.rounding_base).unwrap_or(0))),
        ]);
    }
    for table in &report.tables {
        rows.push(Vec::new());
        rows.push(vec![Out::text(pick(language, &table.vi, &table.en))]);
        let mut header = vec![Out::Empty];
        header.extend(table.columns.iter().map(|c| Out::text(c.text(language))));
        header.push(t("Tổng", "Total"));
        rows.push(header);
        for (r, label) in table.rows.iter().enumerate() {
            let mut line = vec![Out::text(label.text(language))];
            if let Some(cells) = table.cells.get(r) {
                line.extend(cells.iter().map(Out::cell));
            }
            if let Some(total) = table.row_totals.get(r) {
                line.push(Out::cell(total));
            }
            rows.push(line);
        }
        let mut totals = vec![t("Tổng", "Total")];
        totals.extend(table.column_totals.iter().map(Out::cell));
        totals.push(Out::cell(&table.total));
        rows.push(totals);
    }
    rows.push(Vec::new());
    rows.push(vec![t("Chỉ số theo dõi", "Key figures")]);
    for kpi in &report.kpis {
        rows.push(vec![
            Out::text(pick(language, &kpi.vi, &kpi.en)),
            kpi.value
                .map_or_else(|| Out::text(&report.suppressed_mark), Out::Number),
            Out::text(match kpi.unit.as_str() {
                "percent" => "%",
                "hours" => pick(language, "giờ", "hours"),
                _ => pick(language, "ngày", "days"),
            }),
        ]);
    }
    rows.push(Vec::new());
    rows.push(vec![t(
        "Tổng số vụ việc theo trường",
        "Cases by school (totals only)",
    )]);
    for school in &report.schools {
        rows.push(vec![Out::text(&school.name), Out::cell(&school.cases)]);
    }
    if !report.indicators.is_empty() {
        rows.push(Vec::new());
        rows.push(vec![t(
            "Chỉ tiêu của kế hoạch (mục II.2.3)",
            "The plan's indicators (section II.2.3)",
        )]);
        let mut header = vec![t("Địa bàn", "Area")];
        if let Some(first) = report.indicators.first() {
            header.extend(first.values.iter().map(|v| {
                Out::text(format!(
                    "{} (≥ {}%)",
                    pick(language, &v.vi, &v.en),
                    v.target_percent
                ))
            }));
        }
        rows.push(header);
        for area in &report.indicators {
            let mut line = vec![Out::text(&area.name)];
            line.extend(area.values.iter().map(|v| {
                v.percent
                    .map_or_else(|| Out::text(&report.suppressed_mark), Out::Number)
            }));
            rows.push(line);
        }
    }
    if !report.notes.is_empty() {
        rows.push(Vec::new());
        rows.push(vec![t("Ghi chú", "Notes")]);
        for note in &report.notes {
            rows.push(vec![Out::text(pick(language, &note.vi, &note.en))]);
        }
    }
    rows
}

/// CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
/// Vietnamese letters right).
pub fn csv(report: &Report, language: &str) -> Result<Vec<u8>, String> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    for row in grid(report, language) {
        if row.is_empty() {
            // A blank line between sections (a writer would quote it).
            out.push(b'\n');
            continue;
        }
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        writer
            .write_record(row.iter().map(Out::as_csv))
            .map_err(|e| e.to_string())?;
        writer.flush().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// XLSX: the same grid on one sheet, counts as numbers.
pub fn xlsx(report: &Report, language: &str) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet
        .set_name(pick(language, "Báo cáo", "Report"))
        .map_err(|e| e.to_string())?;
    sheet.set_column_width(0, 48).map_err(|e| e.to_string())?;
    for (r, row) in grid(report, language).iter().enumerate() {
        let r = u32::try_from(r).map_err(|e| e.to_string())?;
        let heading = row.len() == 1;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|e| e.to_string())?;
            match cell {
                Out::Text(text) if heading => sheet.write_string_with_format(r, c, text, &bold),
                Out::Text(text) => sheet.write_string(r, c, text),
                Out::Number(n) => sheet.write_number(r, c, *n),
                Out::Empty => continue,
            }
            .map_err(|e| e.to_string())?;
        }
    }
    workbook.save_to_buffer().map_err(|e| e.to_string())
}

#[cfg(test)]
mod csv_cell_tests {
    use super::Out;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-1+1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let written = Out::Text(formula.to_owned()).as_csv();
            assert_eq!(written, format!("'{formula}"));
        }
        assert_eq!(Out::Text("Huyện An Lạc".into()).as_csv(), "Huyện An Lạc");
        assert_eq!(Out::Number(-3.0).as_csv(), "-3");
        assert_eq!(Out::Number(12.5).as_csv(), "12.5");
    }
}
