//! Cell suppression for two-way tables with their margins (REFERENCE §7).
//!
//! A table is handled as its *augmented* grid: `R` rows of cells plus the
//! row of column totals, `C` columns plus the column of row totals, and the
//! grand total in the corner. Every row and every column of that grid obeys
//! one linear equation (the cells add up to the total), so the grid is the
//! complete bipartite graph between its row lines and its column lines, one
//! edge per cell. A hidden cell can be worked out exactly from the published
//! cells if and only if its edge is a *bridge* of the graph of hidden cells:
//! an edge on a cycle of hidden cells can move by ±1 around the cycle (the
//! signs alternate, so every equation still holds) and nothing published
//! changes.
//!
//! So: hide every count from 1 to k−1 (primary suppression), then while a
//! hidden cell is a bridge, hide the cheapest path of further cells that
//! closes a cycle through it (complementary suppression). Zero cells are
//! avoided as complements (a hidden zero next to a hidden count lets bounds
//! pin it), large totals cost their size.
//!
//! Tables that share their column totals (cases by age and sex, cases by
//! school level and sex) are suppressed together: a column total hidden in
//! one is hidden in all, and the hidden column totals of each table are kept
//! connected without passing through the totals row, so a change that is
//! invisible in one table can be matched in every other.

/// Which cells of an augmented grid are hidden.
pub type Mask = Vec<Vec<bool>>;

/// The augmented grid of `cells` (R × C): column totals appended as row R,
/// row totals as column C, the grand total at (R, C).
pub fn augment(cells: &[Vec<u64>], columns: usize) -> Vec<Vec<u64>> {
    let mut grid: Vec<Vec<u64>> = cells
        .iter()
        .map(|row| {
            let mut row: Vec<u64> = (0..columns)
                .map(|c| row.get(c).copied().unwrap_or(0))
                .collect();
            let total = row.iter().sum();
            row.push(total);
            row
        })
        .collect();
    let totals: Vec<u64> = (0..=columns)
        .map(|c| {
            grid.iter()
                .map(|row| row.get(c).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    grid.push(totals);
    grid
}

const ZERO_COST: u64 = 1 << 40;
const SHARED_COST: u64 = 1 << 30;

struct Graph<'a> {
    grid: &'a [Vec<u64>],
    rows: usize,
    cols: usize,
    shared_margin: bool,
}

impl Graph<'_> {
    fn vertices(&self) -> usize {
        self.rows + self.cols
    }

    /// The cell joining vertices `a` and `b`, if one is a row and the other a column.
    fn cell(&self, a: usize, b: usize) -> Option<(usize, usize)> {
        match (a < self.rows, b < self.rows) {
            (true, false) => Some((a, b - self.rows)),
            (false, true) => Some((b, a - self.rows)),
            _ => None,
        }
    }

    fn value(&self, (r, c): (usize, usize)) -> u64 {
        self.grid
            .get(r)
            .and_then(|row| row.get(c))
            .copied()
            .unwrap_or(0)
    }

    fn cost(&self, hidden: &Mask, cell: (usize, usize)) -> u64 {
        if is_hidden(hidden, cell) {
            return 0;
        }
        let value = self.value(cell);
        let base = if value == 0 { ZERO_COST } else { value + 1 };
        if self.shared_margin && cell.0 + 1 == self.rows {
            base.saturating_add(SHARED_COST)
        } else {
            base
        }
    }

    /// Cheapest path from `from` to `to`, never using cell `skip` or vertex
    /// `avoid`; the cells on it.
    fn cheapest_path(
        &self,
        hidden: &Mask,
        from: usize,
        to: usize,
        skip: Option<(usize, usize)>,
        avoid: Option<usize>,
    ) -> Option<Vec<(usize, usize)>> {
        let n = self.vertices();
        let mut dist = vec![u64::MAX; n];
        let mut previous: Vec<Option<usize>> = vec![None; n];
        let mut done = vec![false; n];
        *dist.get_mut(from)? = 0;
        loop {
            let current = (0..n)
                .filter(|&v| !done.get(v).copied().unwrap_or(true))
                .filter(|&v| dist.get(v).is_some_and(|d| *d < u64::MAX))
                .min_by_key(|&v| dist.get(v).copied().unwrap_or(u64::MAX))?;
            if current == to {
                break;
            }
            if let Some(flag) = done.get_mut(current) {
                *flag = true;
            }
            let here = dist.get(current).copied().unwrap_or(u64::MAX);
            for next in 0..n {
                if Some(next) == avoid || done.get(next).copied().unwrap_or(true) {
                    continue;
                }
                let Some(cell) = self.cell(current, next) else {
                    continue;
                };
                if Some(cell) == skip {
                    continue;
                }
                let candidate = here.saturating_add(self.cost(hidden, cell));
                if let (Some(d), Some(p)) = (dist.get_mut(next), previous.get_mut(next))
                    && candidate < *d
                {
                    *d = candidate;
                    *p = Some(current);
                }
            }
        }
        let mut path = Vec::new();
        let mut at = to;
        while at != from {
            let back = previous.get(at).copied().flatten()?;
            path.push(self.cell(back, at)?);
            at = back;
        }
        Some(path)
    }

    /// Whether `a` and `b` are joined by hidden cells, without cell `skip`
    /// or vertex `avoid`.
    fn connected(
        &self,
        hidden: &Mask,
        a: usize,
        b: usize,
        skip: Option<(usize, usize)>,
        avoid: Option<usize>,
    ) -> bool {
        let n = self.vertices();
        let mut seen = vec![false; n];
        let mut stack = vec![a];
        while let Some(v) = stack.pop() {
            if v == b {
                return true;
            }
            if seen.get(v).copied().unwrap_or(true) {
                continue;
            }
            if let Some(flag) = seen.get_mut(v) {
                *flag = true;
            }
            for w in 0..n {
                if Some(w) == avoid || seen.get(w).copied().unwrap_or(true) {
                    continue;
                }
                if let Some(cell) = self.cell(v, w)
                    && Some(cell) != skip
                    && is_hidden(hidden, cell)
                {
                    stack.push(w);
                }
            }
        }
        false
    }
}

fn is_hidden(mask: &Mask, (r, c): (usize, usize)) -> bool {
    mask.get(r)
        .and_then(|row| row.get(c))
        .copied()
        .unwrap_or(false)
}

fn hide(mask: &mut Mask, (r, c): (usize, usize)) {
    if let Some(cell) = mask.get_mut(r).and_then(|row| row.get_mut(c)) {
        *cell = true;
    }
}

/// The hidden cells of one augmented grid. `k`: the smallest publishable
/// count; `forced`: cells to hide whatever their value; `shared_margin`:
/// the totals row is shared with other tables (see the module).
pub fn suppress(grid: &[Vec<u64>], k: u64, forced: Option<&Mask>, shared_margin: bool) -> Mask {
    let rows = grid.len();
    let cols = grid.first().map_or(0, Vec::len);
    let mut hidden: Mask = grid
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(c, v)| (1..k).contains(v) || forced.is_some_and(|f| is_hidden(f, (r, c))))
                .collect()
        })
        .collect();
    let graph = Graph {
        grid,
        rows,
        cols,
        shared_margin,
    };
    // Each round hides at least one more cell, so this ends; the bound is
    // only a guard.
    for _ in 0..=rows * cols {
        if let Some(path) = next_path(&graph, &hidden) {
            if path.is_empty() {
                break;
            }
            for cell in path {
                hide(&mut hidden, cell);
            }
        } else {
            return hidden;
        }
    }
    // Unreachable in practice; hiding everything is always safe.
    grid.iter().map(|row| vec![true; row.len()]).collect()
}

/// The cells to hide next, or `None` when the pattern is safe.
fn next_path(graph: &Graph<'_>, hidden: &Mask) -> Option<Vec<(usize, usize)>> {
    let everything = || -> Vec<(usize, usize)> {
        (0..graph.rows)
            .flat_map(|r| (0..graph.cols).map(move |c| (r, c)))
            .collect()
    };
    for (r, c) in everything() {
        if !is_hidden(hidden, (r, c)) {
            continue;
        }
        let (a, b) = (r, graph.rows + c);
        if !graph.connected(hidden, a, b, Some((r, c)), None) {
            return Some(
                graph
                    .cheapest_path(hidden, a, b, Some((r, c)), None)
                    .unwrap_or_else(everything),
            );
        }
    }
    if graph.shared_margin {
        let totals_row = graph.rows.checked_sub(1)?;
        let hidden_columns: Vec<usize> = (0..graph.cols)
            .filter(|&c| is_hidden(hidden, (totals_row, c)))
            .map(|c| graph.rows + c)
            .collect();
        if let Some((first, rest)) = hidden_columns.split_first() {
            for other in rest {
                if !graph.connected(hidden, *first, *other, None, Some(totals_row)) {
                    return Some(
                        graph
                            .cheapest_path(hidden, *first, *other, None, Some(totals_row))
                            .unwrap_or_else(everything),
                    );
                }
            }
        }
    }
    None
}

/// Suppresses tables that share their totals row (same columns, same column
/// totals): a total hidden in one is hidden in all.
pub fn suppress_linked(grids: &[Vec<Vec<u64>>], k: u64, forced: &[Option<Mask>]) -> Vec<Mask> {
    let mut shared: Vec<bool> = Vec::new();
    for _ in 0..=grids
        .iter()
        .map(|g| g.first().map_or(0, Vec::len))
        .sum::<usize>()
    {
        let masks: Vec<Mask> = grids
            .iter()
            .enumerate()
            .map(|(i, grid)| {
                let mut extra: Mask = match forced.get(i).cloned().flatten() {
                    Some(mask) => mask,
                    None => grid.iter().map(|row| vec![false; row.len()]).collect(),
                };
                if let Some(last) = extra.last_mut() {
                    for (c, flag) in last.iter_mut().enumerate() {
                        *flag |= shared.get(c).copied().unwrap_or(false);
                    }
                }
                suppress(grid, k, Some(&extra), grids.len() > 1)
            })
            .collect();
        let mut union = shared.clone();
        for mask in &masks {
            if let Some(last) = mask.last() {
                if union.len() < last.len() {
                    union.resize(last.len(), false);
                }
                for (c, flag) in last.iter().enumerate() {
                    if let Some(u) = union.get_mut(c) {
                        *u |= *flag;
                    }
                }
            }
        }
        if union == shared
            && masks.iter().all(|m| {
                m.last().is_none_or(|last| {
                    last.iter()
                        .enumerate()
                        .all(|(c, f)| *f == union.get(c).copied().unwrap_or(false))
                })
            })
        {
            return masks;
        }
        shared = union;
    }
    grids
        .iter()
        .map(|g| g.iter().map(|row| vec![true; row.len()]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The equations of a set of augmented grids whose totals rows are one
    /// shared set of unknowns, as rows over the hidden unknowns; whether
    /// each hidden cell is determined by them (rank test).
    fn determined(grids: &[Vec<Vec<u64>>], masks: &[Mask]) -> Vec<(usize, usize, usize)> {
        // Unknown ids: shared totals row first (by column), then each grid's others.
        let mut ids: std::collections::HashMap<(usize, usize, usize), usize> = Default::default();
        let mut next = 0;
        let rows_of = |g: usize| grids[g].len();
        for (g, mask) in masks.iter().enumerate() {
            for (r, row) in mask.iter().enumerate() {
                for (c, hidden) in row.iter().enumerate() {
                    if !hidden {
                        continue;
                    }
                    let key = if r + 1 == rows_of(g) && grids.len() > 1 {
                        (usize::MAX, r, c)
                    } else {
                        (g, r, c)
                    };
                    if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(key) {
                        e.insert(next);
                        next += 1;
                    }
                }
            }
        }
        let id = |g: usize, r: usize, c: usize| -> Option<usize> {
            let key = if r + 1 == rows_of(g) && grids.len() > 1 {
                (usize::MAX, r, c)
            } else {
                (g, r, c)
            };
            ids.get(&key).copied()
        };
        let mut equations: Vec<Vec<f64>> = Vec::new();
        for (g, grid) in grids.iter().enumerate() {
            let (rows, cols) = (grid.len(), grid[0].len());
            for r in 0..rows {
                let mut eq = vec![0.0; next];
                for c in 0..cols {
                    let sign = if c + 1 == cols { -1.0 } else { 1.0 };
                    if masks[g][r][c] {
                        eq[id(g, r, c).unwrap()] += sign;
                    }
                }
                equations.push(eq);
            }
            for c in 0..cols {
                let mut eq = vec![0.0; next];
                for r in 0..rows {
                    let sign = if r + 1 == rows { -1.0 } else { 1.0 };
                    if masks[g][r][c] {
                        eq[id(g, r, c).unwrap()] += sign;
                    }
                }
                equations.push(eq);
            }
        }
        let base = rank(equations.clone());
        let mut found = Vec::new();
        for (g, mask) in masks.iter().enumerate() {
            for (r, row) in mask.iter().enumerate() {
                for (c, hidden) in row.iter().enumerate() {
                    if *hidden {
                        let mut with = equations.clone();
                        let mut unit = vec![0.0; next];
                        unit[id(g, r, c).unwrap()] = 1.0;
                        with.push(unit);
                        if rank(with) == base {
                            found.push((g, r, c));
                        }
                    }
                }
            }
        }
        found
    }

    fn rank(mut m: Vec<Vec<f64>>) -> usize {
        let cols = m.first().map_or(0, Vec::len);
        let mut rank = 0;
        for col in 0..cols {
            let Some(pivot) = (rank..m.len())
                .max_by(|&a, &b| m[a][col].abs().partial_cmp(&m[b][col].abs()).unwrap())
            else {
                break;
            };
            if m[pivot][col].abs() < 1e-9 {
                continue;
            }
            m.swap(rank, pivot);
            let p = m[rank][col];
            for r in 0..m.len() {
                if r != rank {
                    let f = m[r][col] / p;
                    if f != 0.0 {
                        let pivot_row = m[rank].clone();
                        for (value, p) in m[r].iter_mut().zip(&pivot_row) {
                            *value -= f * p;
                        }
                    }
                }
            }
            rank += 1;
        }
        rank
    }

    fn no_small_published(grid: &[Vec<u64>], mask: &Mask, k: u64) {
        for (r, row) in grid.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                assert!(
                    mask[r][c] || !(1..k).contains(v),
                    "published small count {v} at ({r},{c}) in {grid:?}"
                );
            }
        }
    }

    fn table() -> impl Strategy<Value = Vec<Vec<u64>>> {
        (1usize..6, 1usize..5).prop_flat_map(|(rows, cols)| {
            proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![3 => 0u64..5, 2 => 0u64..40, 1 => Just(0u64)],
                    cols,
                ),
                rows,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn no_small_count_is_published_and_no_hidden_cell_is_determined(cells in table()) {
            let cols = cells[0].len();
            let grid = augment(&cells, cols);
            let mask = suppress(&grid, 5, None, false);
            no_small_published(&grid, &mask, 5);
            let determined = determined(std::slice::from_ref(&grid), std::slice::from_ref(&mask));
            prop_assert!(determined.is_empty(), "recoverable {determined:?} in {grid:?} / {mask:?}");
        }

        #[test]
        fn linked_tables_protect_each_other(
            (first, second) in (1usize..5).prop_flat_map(|cols| {
                let rows = |n| proptest::collection::vec(
                    proptest::collection::vec(prop_oneof![3 => 0u64..5, 2 => 0u64..30], cols), n);
                (rows(1..5), rows(1..5))
            })
        ) {
            // Make the second table's column totals equal the first's by
            // adding a balancing row, as two breakdowns of the same people.
            let cols = first[0].len();
            let totals: Vec<u64> = (0..cols).map(|c| first.iter().map(|r| r[c]).sum()).collect();
            let mut second: Vec<Vec<u64>> = second
                .into_iter()
                .map(|row| row.iter().zip(&totals).map(|(v, t)| (*v).min(*t)).collect())
                .collect();
            for c in 0..cols {
                let mut left = totals[c];
                for row in &mut second {
                    row[c] = row[c].min(left);
                    left -= row[c];
                }
                second[0][c] += left;
            }
            let grids = vec![augment(&first, cols), augment(&second, cols)];
            prop_assert_eq!(grids[0].last(), grids[1].last());
            let masks = suppress_linked(&grids, 5, &[None, None]);
            for (grid, mask) in grids.iter().zip(&masks) {
                no_small_published(grid, mask, 5);
            }
            prop_assert_eq!(masks[0].last(), masks[1].last());
            let determined = determined(&grids, &masks);
            prop_assert!(determined.is_empty(), "recoverable {determined:?} in {grids:?} / {masks:?}");
        }

        #[test]
        fn small_tables_leave_every_hidden_cell_several_values(
            cells in proptest::collection::vec(proptest::collection::vec(0u64..7, 2), 2)
        ) {
            // Exhaustive: every table of non-negative counts that publishes
            // the same numbers; each hidden cell must take at least two values.
            let grid = augment(&cells, 2);
            let mask = suppress(&grid, 5, None, false);
            no_small_published(&grid, &mask, 5);
            let bound = grid[2][2];
            let mut values: Vec<std::collections::BTreeSet<u64>> = vec![Default::default(); 9];
            for a in 0..=bound { for b in 0..=bound { for c in 0..=bound { for d in 0..=bound {
                let candidate = augment(&[vec![a, b], vec![c, d]], 2);
                let same = (0..3).all(|r| (0..3).all(|col| mask[r][col] || candidate[r][col] == grid[r][col]));
                if same {
                    for r in 0..3 { for col in 0..3 { values[r * 3 + col].insert(candidate[r][col]); } }
                }
            }}}}
            for r in 0..3 {
                for col in 0..3 {
                    if mask[r][col] {
                        prop_assert!(values[r * 3 + col].len() >= 2, "cell ({r},{col}) pinned in {grid:?} / {mask:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_lone_small_cell_takes_a_cycle_of_complements() {
        let grid = augment(&[vec![3, 20], vec![12, 30]], 2);
        let mask = suppress(&grid, 5, None, false);
        // The 3 and its cheapest cycle: 12 and 20 and 30 (no totals needed).
        assert_eq!(
            mask,
            vec![
                vec![true, true, false],
                vec![true, true, false],
                vec![false, false, false]
            ]
        );
        assert!(determined(&[grid], &[mask]).is_empty());
    }

    #[test]
    fn nothing_small_means_nothing_hidden() {
        let grid = augment(&[vec![0, 20], vec![12, 30]], 2);
        let mask = suppress(&grid, 5, None, false);
        assert!(mask.iter().flatten().all(|h| !h));
    }
}
