//! The taxonomy: the user's dimensions and values, and the cells they span.
//!
//! A taxonomy file is YAML:
//!
//! ```yaml
//! name: self-doubt
//! description: what the taxonomy covers
//! dimensions:
//!   - id: theme
//!     description: what this dimension distinguishes
//!     values:
//!       - id: perfectionism
//!         description: what sets it apart from its neighbours, for a labeller
//!         keywords: [flawless, perfect]
//!         examples: ["I redid the slides four times and they still feel wrong."]
//!         weight: 1.0        # optional, > 0, default 1
//! exclusions:                # optional
//!   - when: {risk: [crisis]} # a cell matching `when` is excluded ...
//!     require: {emotion: [sad, hopeless]} # ... unless it also matches `require`
//!   - forbid: {theme: [procrastination], situation: [family-conflict]} # excluded outright
//!     reason: optional text
//! ```
//!
//! Every input is designated by its [`Cell`]: one value per dimension.
//! The code knows none of the words in the file; it only checks the file's shape and consistency,
//! and reports every problem it finds with file, line, column and field, so a user fixes them all
//! in one pass.

use std::fmt;
use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde::Serialize;

/// The user's taxonomy: dimensions with values, and exclusion rules over the cells they span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Taxonomy {
    /// Short name, used in reports and dataset cards.
    pub name: String,
    /// What the taxonomy covers; may be empty.
    pub description: String,
    /// The dimensions, in file order; a cell has one value index per dimension, in this order.
    pub dimensions: Vec<Dimension>,
    /// Rules that remove cells from the full factorial.
    pub exclusions: Vec<Exclusion>,
    /// The file the taxonomy was read from, as given to [`Taxonomy::parse`]; kept for messages.
    pub file: String,
}

/// One axis along which inputs vary (for example a theme or an emotion).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dimension {
    /// Identifier: lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// What the dimension distinguishes; may be empty.
    pub description: String,
    /// The values, in file order; never empty in a parsed taxonomy.
    pub values: Vec<Value>,
    /// 1-based line where the dimension is defined, so later stages can point back at the file.
    pub line: usize,
}

/// One value of a dimension, with what a labeller and a generator need to recognise it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    /// Identifier, unique within its dimension: lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// What distinguishes this value from its neighbours, written for a labeller.
    pub description: String,
    /// Words and phrases that hint at this value.
    pub keywords: Vec<String>,
    /// Realistic user messages that belong to this value.
    pub examples: Vec<String>,
    /// Relative share of inputs for cells with this value; always > 0, default 1.
    pub weight: f64,
    /// 1-based line where the value is defined.
    pub line: usize,
}

/// A rule that removes cells, with where it was written and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    /// What the rule removes.
    pub rule: ExclusionRule,
    /// The user's explanation, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// 1-based line where the rule is defined.
    pub line: usize,
}

/// The two shapes of exclusion rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExclusionRule {
    /// Every cell matching all the conditions is excluded.
    Forbid {
        /// The conditions, all of which must match.
        conditions: Vec<Condition>,
    },
    /// A cell matching all of `when` is excluded unless it also matches all of `require`.
    Require {
        /// The conditions that make the rule apply.
        when: Vec<Condition>,
        /// The conditions a cell the rule applies to must meet to stay.
        require: Vec<Condition>,
    },
}

/// "The cell's value for `dimension` is one of `values`."
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// The dimension id.
    pub dimension: String,
    /// The accepted value ids.
    pub values: Vec<String>,
    /// Index of `dimension` in [`Taxonomy::dimensions`], resolved when parsing.
    #[serde(skip)]
    dimension_index: usize,
    /// Indices of `values` in that dimension, resolved when parsing.
    #[serde(skip)]
    value_indices: Vec<usize>,
}

/// A point of the taxonomy: one value index per dimension, in dimension order.
///
/// Its stable text form is [`Taxonomy::cell_key`]; indices are only meaningful for the taxonomy
/// they came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell(pub Vec<usize>);

/// The cells left after exclusions, in lexicographic order of value indices.
///
/// Built by [`Taxonomy::allowed_cells`]. It walks the cells depth first and prunes a prefix as soon
/// as a rule over the dimensions assigned so far excludes it, so it stays fast when rules remove
/// large parts of a big taxonomy.
#[derive(Debug, Clone)]
pub struct AllowedCells<'t> {
    taxonomy: &'t Taxonomy,
    /// Rules to check once the dimension at this index is assigned (its last referenced one).
    rules_at_depth: Vec<Vec<usize>>,
    current: Vec<usize>,
    started: bool,
    done: bool,
}

/// Why a taxonomy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaxonomyError {
    /// The file could not be read.
    #[error("could not read taxonomy file {file}")]
    Io {
        /// The path as given.
        file: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file was read but is not a valid taxonomy; every problem found is listed.
    #[error("{}", render_invalid(file, problems))]
    Invalid {
        /// The file as named to the parser.
        file: String,
        /// Every problem found, in file order.
        problems: Vec<TaxonomyProblem>,
    },
}

/// One problem in a taxonomy file, located precisely enough to jump to it.
///
/// Displays as `FILE:LINE:COL: FIELD: MESSAGE`, the form editors and terminals turn into links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxonomyProblem {
    /// The file as named to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted path of the field, e.g. `dimensions[1].values[3].id`; empty for YAML syntax errors.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for TaxonomyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

fn render_invalid(file: &str, problems: &[TaxonomyProblem]) -> String {
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    let mut out = format!("invalid taxonomy file {file} ({} {noun}):", problems.len());
    for problem in problems {
        out.push('\n');
        out.push_str(&problem.to_string());
    }
    out
}

impl TaxonomyError {
    /// The problems behind an [`TaxonomyError::Invalid`] error; empty for other kinds.
    pub fn problems(&self) -> &[TaxonomyProblem] {
        match self {
            TaxonomyError::Invalid { problems, .. } => problems,
            TaxonomyError::Io { .. } => &[],
        }
    }
}

impl Taxonomy {
    /// Reads and parses a taxonomy file; the path as displayed becomes [`Taxonomy::file`].
    pub fn load(path: &Path) -> Result<Taxonomy, TaxonomyError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(source) => Taxonomy::parse(&source, &file),
            Err(source) => Err(TaxonomyError::Io { file, source }),
        }
    }

    /// Parses taxonomy YAML; `file` only names the source in problems and in [`Taxonomy::file`].
    pub fn parse(source: &str, file: &str) -> Result<Taxonomy, TaxonomyError> {
        let mut checker = Checker {
            file,
            problems: Vec::new(),
        };
        let taxonomy = checker.taxonomy(source);
        if checker.problems.is_empty() {
            if let Some(taxonomy) = taxonomy {
                return Ok(taxonomy);
            }
            // Defensive: a taxonomy that failed to build always leaves a problem behind.
            checker.push(1, 1, "", "could not read the taxonomy".to_string());
        }
        let mut problems = checker.problems;
        problems.sort_by_key(|problem| (problem.line, problem.column));
        problems.dedup();
        Err(TaxonomyError::Invalid {
            file: file.to_string(),
            problems,
        })
    }

    /// The dimension with this id.
    pub fn dimension(&self, id: &str) -> Option<&Dimension> {
        self.dimensions.iter().find(|dimension| dimension.id == id)
    }

    /// The position of the dimension with this id, i.e. its index in a [`Cell`].
    pub fn dimension_index(&self, id: &str) -> Option<usize> {
        self.dimensions
            .iter()
            .position(|dimension| dimension.id == id)
    }

    /// Number of cells before exclusions (the full factorial), saturating at `u64::MAX`.
    ///
    /// A taxonomy without dimensions has no cells.
    pub fn cell_count_total(&self) -> u64 {
        if self.dimensions.is_empty() {
            return 0;
        }
        self.dimensions.iter().fold(1u64, |acc, dimension| {
            acc.saturating_mul(dimension.values.len() as u64)
        })
    }

    /// Whether `cell` is a well-formed cell of this taxonomy that no exclusion removes.
    pub fn is_allowed(&self, cell: &Cell) -> bool {
        self.is_well_formed(cell) && !self.exclusions.iter().any(|rule| rule.excludes(&cell.0))
    }

    /// Whether `cell` has one in-range value index per dimension.
    pub fn is_well_formed(&self, cell: &Cell) -> bool {
        cell.0.len() == self.dimensions.len()
            && cell
                .0
                .iter()
                .zip(&self.dimensions)
                .all(|(&value_idx, dimension)| value_idx < dimension.values.len())
    }

    /// The cells left after exclusions, lazily, in a deterministic order.
    pub fn allowed_cells(&self) -> AllowedCells<'_> {
        let n_dimensions = self.dimensions.len();
        let mut rules_at_depth = vec![Vec::new(); n_dimensions];
        for (rule_idx, rule) in self.exclusions.iter().enumerate() {
            let depth = rule.last_dimension().unwrap_or(0);
            if let Some(rules) = rules_at_depth.get_mut(depth) {
                rules.push(rule_idx);
            }
        }
        let empty = n_dimensions == 0 || self.dimensions.iter().any(|d| d.values.is_empty());
        AllowedCells {
            taxonomy: self,
            rules_at_depth,
            current: Vec::with_capacity(n_dimensions),
            started: false,
            done: empty,
        }
    }

    /// Number of cells left after exclusions.
    pub fn allowed_cell_count(&self) -> u64 {
        self.allowed_cells()
            .fold(0u64, |acc, _| acc.saturating_add(1))
    }

    /// The product of the cell's value weights: its relative share of inputs.
    ///
    /// A malformed cell weighs 0.
    pub fn cell_weight(&self, cell: &Cell) -> f64 {
        if !self.is_well_formed(cell) {
            return 0.0;
        }
        cell.0
            .iter()
            .zip(&self.dimensions)
            .map(|(&value_idx, dimension)| dimension.values[value_idx].weight)
            .product()
    }

    /// The value a cell has in the dimension at `dimension_idx`.
    pub fn cell_value(&self, cell: &Cell, dimension_idx: usize) -> Option<&Value> {
        let value_idx = *cell.0.get(dimension_idx)?;
        self.dimensions.get(dimension_idx)?.values.get(value_idx)
    }

    /// The stable text form of a cell, `dim=value|dim=value|...` in dimension order.
    ///
    /// Used as a map key on disk, so it names ids, never indices. Ids cannot contain `=` or `|`,
    /// so the form is unambiguous. An out-of-range index (a malformed cell) renders as `?`, which
    /// [`Taxonomy::parse_cell_key`] rejects.
    pub fn cell_key(&self, cell: &Cell) -> String {
        let mut key = String::new();
        for (dimension_idx, dimension) in self.dimensions.iter().enumerate() {
            if dimension_idx > 0 {
                key.push('|');
            }
            key.push_str(&dimension.id);
            key.push('=');
            match self.cell_value(cell, dimension_idx) {
                Some(value) => key.push_str(&value.id),
                None => key.push('?'),
            }
        }
        key
    }

    /// Reads a [`Taxonomy::cell_key`] back; `None` unless every dimension is named exactly once
    /// with a known value.
    ///
    /// The dimensions may come in any order, so keys written before the dimensions were
    /// reordered still resolve. Exclusions are not checked: see [`Taxonomy::is_allowed`].
    pub fn parse_cell_key(&self, key: &str) -> Option<Cell> {
        let mut indices: Vec<Option<usize>> = vec![None; self.dimensions.len()];
        for part in key.split('|') {
            let (dimension_id, value_id) = part.split_once('=')?;
            let dimension_idx = self.dimension_index(dimension_id)?;
            let value_idx = self.dimensions[dimension_idx].value_index(value_id)?;
            let slot = indices.get_mut(dimension_idx)?;
            if slot.is_some() {
                return None;
            }
            *slot = Some(value_idx);
        }
        let indices: Option<Vec<usize>> = indices.into_iter().collect();
        Some(Cell(indices?))
    }

    /// The text `aligndata taxonomy show` prints: dimensions, values, rules and cell counts.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "taxonomy {} ({})", self.name, self.file);
        if let Some(line) = summary(&self.description) {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "dimensions: {}", self.dimensions.len());
        for dimension in &self.dimensions {
            let n = dimension.values.len();
            let _ = write!(
                out,
                "  {} ({n} {})",
                dimension.id,
                plural(n, "value", "values")
            );
            match summary(&dimension.description) {
                Some(line) => {
                    let _ = writeln!(out, ": {line}");
                }
                None => {
                    let _ = writeln!(out);
                }
            }
            let id_width = dimension
                .values
                .iter()
                .map(|v| v.id.len())
                .max()
                .unwrap_or(0);
            for value in &dimension.values {
                let mut facts = vec![
                    format!(
                        "{} {}",
                        value.keywords.len(),
                        plural(value.keywords.len(), "keyword", "keywords")
                    ),
                    format!(
                        "{} {}",
                        value.examples.len(),
                        plural(value.examples.len(), "example", "examples")
                    ),
                ];
                if value.weight != 1.0 {
                    facts.insert(0, format!("weight {}", value.weight));
                }
                let _ = write!(out, "    {:<id_width$}  [{}]", value.id, facts.join(", "));
                match summary(&value.description) {
                    Some(line) => {
                        let _ = writeln!(out, " {line}");
                    }
                    None => {
                        let _ = writeln!(out);
                    }
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "exclusions: {}", self.exclusions.len());
        for (rule_idx, rule) in self.exclusions.iter().enumerate() {
            let _ = writeln!(out, "  {}. {rule} (line {})", rule_idx + 1, rule.line);
            if let Some(reason) = rule.reason.as_deref().and_then(summary) {
                let _ = writeln!(out, "     reason: {reason}");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "cells: {} in total, {} after exclusions",
            self.cell_count_total(),
            self.allowed_cell_count()
        );
        out
    }
}

impl Dimension {
    /// The position of the value with this id, i.e. what a [`Cell`] stores for this dimension.
    pub fn value_index(&self, id: &str) -> Option<usize> {
        self.values.iter().position(|value| value.id == id)
    }
}

impl Exclusion {
    /// Whether this rule removes `cell` (value indices, in dimension order).
    ///
    /// A condition on a dimension the slice does not reach never matches, which lets
    /// [`AllowedCells`] test prefixes that cover the rule's dimensions.
    pub fn excludes(&self, cell: &[usize]) -> bool {
        match &self.rule {
            ExclusionRule::Forbid { conditions } => all_match(conditions, cell),
            ExclusionRule::Require { when, require } => {
                all_match(when, cell) && !all_match(require, cell)
            }
        }
    }

    /// The highest dimension index the rule mentions.
    fn last_dimension(&self) -> Option<usize> {
        let conditions: Vec<&Condition> = match &self.rule {
            ExclusionRule::Forbid { conditions } => conditions.iter().collect(),
            ExclusionRule::Require { when, require } => when.iter().chain(require).collect(),
        };
        conditions.iter().map(|c| c.dimension_index).max()
    }
}

impl Condition {
    /// Whether the cell's value for this condition's dimension is one of its values.
    pub fn matches(&self, cell: &[usize]) -> bool {
        cell.get(self.dimension_index)
            .is_some_and(|value_idx| self.value_indices.contains(value_idx))
    }
}

fn all_match(conditions: &[Condition], cell: &[usize]) -> bool {
    conditions.iter().all(|condition| condition.matches(cell))
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.values.as_slice() {
            [single] => write!(f, "{} is {single}", self.dimension),
            values => write!(f, "{} is one of {}", self.dimension, values.join(", ")),
        }
    }
}

fn join_conditions(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

impl fmt::Display for Exclusion {
    /// The rule in words, e.g. "where risk is crisis, keep only cells where emotion is one of sad,
    /// lonely".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            ExclusionRule::Forbid { conditions } => {
                write!(f, "exclude cells where {}", join_conditions(conditions))
            }
            ExclusionRule::Require { when, require } => write!(
                f,
                "where {}, keep only cells where {}",
                join_conditions(when),
                join_conditions(require)
            ),
        }
    }
}

impl Iterator for AllowedCells<'_> {
    type Item = Cell;

    fn next(&mut self) -> Option<Cell> {
        if self.done {
            return None;
        }
        let n_dimensions = self.taxonomy.dimensions.len();
        if self.started {
            if !self.advance() {
                self.done = true;
                return None;
            }
        } else {
            self.started = true;
            self.current.push(0);
        }
        // Invariant: `current` is a non-empty prefix whose earlier positions passed their rules.
        loop {
            let depth = self.current.len() - 1;
            if self.prefix_allowed(depth) {
                if depth + 1 == n_dimensions {
                    return Some(Cell(self.current.clone()));
                }
                self.current.push(0);
                continue;
            }
            if !self.advance() {
                self.done = true;
                return None;
            }
        }
    }
}

impl AllowedCells<'_> {
    /// Moves to the next prefix in order at the same or a shallower depth; false when exhausted.
    fn advance(&mut self) -> bool {
        while let Some(depth) = self.current.len().checked_sub(1) {
            self.current[depth] += 1;
            if self.current[depth] < self.taxonomy.dimensions[depth].values.len() {
                return true;
            }
            self.current.pop();
        }
        false
    }

    fn prefix_allowed(&self, depth: usize) -> bool {
        self.rules_at_depth[depth]
            .iter()
            .all(|&rule_idx| !self.taxonomy.exclusions[rule_idx].excludes(&self.current))
    }
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|line| !line.is_empty())
}

/// Longest summary `describe` prints, in characters, so one value stays on one line.
const SUMMARY_MAX_CHARS: usize = 100;

/// The first sentence of the first line, cut to [`SUMMARY_MAX_CHARS`]: enough to recognise a
/// description in a listing.
fn summary(text: &str) -> Option<String> {
    let line = first_line(text)?;
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    if sentence.chars().count() <= SUMMARY_MAX_CHARS {
        return Some(sentence.to_string());
    }
    let cut: String = sentence.chars().take(SUMMARY_MAX_CHARS - 3).collect();
    let cut = match cut.rfind(' ') {
        Some(space) => &cut[..space],
        None => cut.as_str(),
    };
    Some(format!("{}...", cut.trim_end_matches([',', ';', ':'])))
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

// ---------------------------------------------------------------------------------------------
// Checking: walks the YAML tree, builds the taxonomy and collects every problem on the way.
// ---------------------------------------------------------------------------------------------

/// Largest product of a rule's dimension sizes that is enumerated to judge the rule on its own.
const RULE_CHECK_LIMIT: u64 = 1_000_000;

struct Checker<'f> {
    file: &'f str,
    problems: Vec<TaxonomyProblem>,
}

/// A key a mapping may hold: its name, whether it must be present, and what its value should be.
struct KeySpec {
    name: &'static str,
    required: bool,
    expected: &'static str,
}

const fn key(name: &'static str, required: bool, expected: &'static str) -> KeySpec {
    KeySpec {
        name,
        required,
        expected,
    }
}

const ROOT_KEYS: &[KeySpec] = &[
    key("name", true, "a short name for the taxonomy"),
    key("description", false, "text"),
    key("dimensions", true, "a list of dimensions"),
    key("exclusions", false, "a list of exclusion rules"),
];
const DIMENSION_KEYS: &[KeySpec] = &[
    key("id", true, "an identifier such as `theme`"),
    key("description", false, "text"),
    key("values", true, "a list of values"),
];
const VALUE_KEYS: &[KeySpec] = &[
    key("id", true, "an identifier such as `job-interview`"),
    key(
        "description",
        true,
        "text telling a labeller what sets this value apart",
    ),
    key("keywords", false, "a list of words"),
    key("examples", false, "a list of example messages"),
    key("weight", false, "a number greater than 0"),
];
const EXCLUSION_KEYS: &[KeySpec] = &[
    key("when", false, "a mapping from dimension id to value ids"),
    key("require", false, "a mapping from dimension id to value ids"),
    key("forbid", false, "a mapping from dimension id to value ids"),
    key("reason", false, "text"),
];

/// The entries of a mapping node, with key names resolved.
struct Fields<'n, 'i> {
    entries: Vec<(String, &'n MarkedYaml<'i>, &'n MarkedYaml<'i>)>,
}

impl<'n, 'i> Fields<'n, 'i> {
    fn get(&self, name: &str) -> Option<&'n MarkedYaml<'i>> {
        self.entries
            .iter()
            .find(|(key, _, _)| key == name)
            .map(|(_, _, value)| *value)
    }

    fn key_node(&self, name: &str) -> Option<&'n MarkedYaml<'i>> {
        self.entries
            .iter()
            .find(|(key, _, _)| key == name)
            .map(|(_, key, _)| *key)
    }
}

/// A dimension as far as it could be read, kept even when broken so later checks can resolve
/// references without cascading errors.
struct DraftDimension {
    id: Option<String>,
    description: String,
    values: Vec<DraftValue>,
    /// Whether every value's id could be read, so an unknown value id is really unknown.
    values_complete: bool,
    line: usize,
}

struct DraftValue {
    id: Option<String>,
    value: Value,
}

fn field_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn position(node: &MarkedYaml<'_>) -> (usize, usize) {
    (node.span.start.line().max(1), node.span.start.col() + 1)
}

fn untagged<'n, 'i>(node: &'n MarkedYaml<'i>) -> &'n MarkedYaml<'i> {
    let mut node = node;
    while let YamlData::Tagged(_, inner) = &node.data {
        node = inner;
    }
    node
}

fn kind_of(node: &MarkedYaml<'_>) -> &'static str {
    match &untagged(node).data {
        YamlData::Value(Scalar::Null) => "nothing (null)",
        YamlData::Value(Scalar::Boolean(_)) => "a boolean",
        YamlData::Value(Scalar::Integer(_)) | YamlData::Value(Scalar::FloatingPoint(_)) => {
            "a number"
        }
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "a string",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged node",
        YamlData::Alias(_) => "an alias",
        YamlData::BadValue => "an invalid value",
    }
}

fn is_identifier(id: &str) -> bool {
    let bytes = id.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let is_sep = |b: u8| b == b'-' || b == b'_';
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) if is_alnum(first) && is_alnum(last) => {}
        _ => return false,
    }
    bytes.iter().all(|&b| is_alnum(b) || is_sep(b))
        && bytes
            .windows(2)
            .all(|pair| !(is_sep(pair[0]) && is_sep(pair[1])))
}

/// A guess at the identifier the user meant, e.g. `Job Interview` -> `job-interview`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == '_' || c == '-' || c.is_whitespace())
            && !out.is_empty()
            && !out.ends_with(['-', '_'])
        {
            out.push(if c == '_' { '_' } else { '-' });
        }
    }
    out.trim_end_matches(['-', '_']).to_string()
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if close enough to look like a typo.
fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(&word_lower, candidate), candidate))
        .filter(|&(distance, candidate)| distance > 0 || candidate != word)
        .filter(|&(distance, candidate)| {
            let longest = word.chars().count().max(candidate.chars().count());
            distance <= 2 && distance * 3 <= longest
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    match closest(word, candidates) {
        Some(candidate) => format!(" (did you mean `{candidate}`?)"),
        None => String::new(),
    }
}

impl Checker<'_> {
    fn push(&mut self, line: usize, column: usize, field: &str, message: String) {
        self.problems.push(TaxonomyProblem {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            message,
        });
    }

    fn at(&mut self, node: &MarkedYaml<'_>, field: &str, message: String) {
        let (line, column) = position(node);
        self.push(line, column, field, message);
    }

    fn taxonomy(&mut self, source: &str) -> Option<Taxonomy> {
        let documents = match MarkedYaml::load_from_str(source) {
            Ok(documents) => documents,
            Err(error) => {
                let marker = error.marker();
                self.push(
                    marker.line().max(1),
                    marker.col() + 1,
                    "",
                    format!("YAML syntax error: {}", error.info()),
                );
                return None;
            }
        };
        let Some(root) = documents.first() else {
            self.push(
                1,
                1,
                "",
                "the file holds no YAML document; expected a mapping with `name` and `dimensions`"
                    .to_string(),
            );
            return None;
        };
        if let Some(second) = documents.get(1) {
            self.at(
                second,
                "",
                format!("expected a single YAML document, found {}", documents.len()),
            );
        }
        let fields = self.mapping(root, "", "the taxonomy", ROOT_KEYS)?;
        let name = fields
            .get("name")
            .and_then(|node| self.text(node, "name", true));
        let description = fields
            .get("description")
            .and_then(|node| self.text(node, "description", false))
            .unwrap_or_default();
        let drafts = match fields.get("dimensions") {
            Some(node) => self.dimensions(node),
            None => Vec::new(),
        };
        let exclusions = match fields.get("exclusions") {
            Some(node) => self.exclusions(node, &drafts),
            None => Vec::new(),
        };
        let dimensions: Vec<Dimension> = drafts
            .into_iter()
            .map(|draft| Dimension {
                id: draft.id.unwrap_or_default(),
                description: draft.description,
                values: draft.values.into_iter().map(|v| v.value).collect(),
                line: draft.line,
            })
            .collect();
        let taxonomy = Taxonomy {
            name: name?,
            description,
            dimensions,
            exclusions,
            file: self.file.to_string(),
        };
        // Only a taxonomy that is otherwise sound can be judged as a whole.
        if self.problems.is_empty() && taxonomy.allowed_cells().next().is_none() {
            let node = fields.key_node("exclusions").unwrap_or(root);
            self.at(
                node,
                "exclusions",
                "the exclusions together exclude every cell; expected at least one cell to remain"
                    .to_string(),
            );
        }
        Some(taxonomy)
    }

    /// Reads a mapping, reporting unknown and missing keys; `None` if it is not a mapping.
    fn mapping<'n, 'i>(
        &mut self,
        node: &'n MarkedYaml<'i>,
        path: &str,
        what: &str,
        keys: &[KeySpec],
    ) -> Option<Fields<'n, 'i>> {
        let names = keys
            .iter()
            .map(|k| format!("`{}`", k.name))
            .collect::<Vec<_>>()
            .join(", ");
        let YamlData::Mapping(mapping) = &untagged(node).data else {
            let field = if path.is_empty() { "" } else { path };
            self.at(
                node,
                field,
                format!(
                    "expected {what} as a mapping with keys {names}, found {}",
                    kind_of(node)
                ),
            );
            return None;
        };
        let mut entries = Vec::new();
        for (key_node, value_node) in mapping.iter() {
            let Some(key) = self.key_name(key_node, path) else {
                continue;
            };
            if keys.iter().any(|k| k.name == key) {
                entries.push((key, key_node, value_node));
                continue;
            }
            let hint = did_you_mean(&key, keys.iter().map(|k| k.name));
            self.at(
                key_node,
                &field_path(path, &key),
                format!("unknown key `{key}`{hint}; expected one of {names}"),
            );
        }
        for spec in keys.iter().filter(|k| k.required) {
            if !entries.iter().any(|(key, _, _)| key == spec.name) {
                self.at(
                    node,
                    &field_path(path, spec.name),
                    format!(
                        "missing required key `{}`: expected {}",
                        spec.name, spec.expected
                    ),
                );
            }
        }
        Some(Fields { entries })
    }

    fn key_name(&mut self, key_node: &MarkedYaml<'_>, path: &str) -> Option<String> {
        match &untagged(key_node).data {
            YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
            YamlData::Value(Scalar::Integer(number)) => Some(number.to_string()),
            _ => {
                let field = if path.is_empty() { "" } else { path };
                self.at(
                    key_node,
                    field,
                    format!("expected a key name, found {}", kind_of(key_node)),
                );
                None
            }
        }
    }

    /// Reads text; integers are taken as written, other scalars must be quoted.
    fn text(&mut self, node: &MarkedYaml<'_>, path: &str, required: bool) -> Option<String> {
        let text = match &untagged(node).data {
            YamlData::Value(Scalar::String(text)) => text.to_string(),
            YamlData::Value(Scalar::Integer(number)) => number.to_string(),
            YamlData::Value(Scalar::Null) if !required => return None,
            YamlData::Value(Scalar::FloatingPoint(_)) | YamlData::Value(Scalar::Boolean(_)) => {
                self.at(
                    node,
                    path,
                    format!("expected text, found {}; put it in quotes", kind_of(node)),
                );
                return None;
            }
            _ => {
                self.at(
                    node,
                    path,
                    format!("expected text, found {}", kind_of(node)),
                );
                return None;
            }
        };
        if required && text.trim().is_empty() {
            self.at(
                node,
                path,
                "expected non-empty text, found an empty string".to_string(),
            );
            return None;
        }
        Some(text)
    }

    /// Reads an identifier; returns it even when malformed (after reporting) so references to it
    /// still resolve and do not cascade into more problems.
    fn identifier(&mut self, node: &MarkedYaml<'_>, path: &str) -> Option<String> {
        let id = self.text(node, path, true)?;
        if !is_identifier(&id) {
            let suggestion = slug(&id);
            let hint = if is_identifier(&suggestion) {
                format!(", e.g. `{suggestion}`")
            } else {
                String::new()
            };
            self.at(
                node,
                path,
                format!(
                    "`{id}` is not a valid id: expected lowercase letters and digits separated by \
                     single `-` or `_`{hint}"
                ),
            );
        }
        Some(id)
    }

    fn sequence<'n, 'i>(
        &mut self,
        node: &'n MarkedYaml<'i>,
        path: &str,
        what: &str,
    ) -> Option<&'n [MarkedYaml<'i>]> {
        match &untagged(node).data {
            YamlData::Sequence(items) => Some(items.as_slice()),
            _ => {
                self.at(
                    node,
                    path,
                    format!("expected {what}, found {}", kind_of(node)),
                );
                None
            }
        }
    }

    fn text_list(&mut self, node: &MarkedYaml<'_>, path: &str, what: &str) -> Vec<String> {
        let Some(items) = self.sequence(node, path, what) else {
            return Vec::new();
        };
        let mut texts = Vec::new();
        for (item_idx, item) in items.iter().enumerate() {
            if let Some(text) = self.text(item, &format!("{path}[{item_idx}]"), true) {
                texts.push(text);
            }
        }
        texts
    }

    fn weight(&mut self, node: &MarkedYaml<'_>, path: &str) -> Option<f64> {
        let weight = match &untagged(node).data {
            YamlData::Value(Scalar::Integer(number)) => *number as f64,
            YamlData::Value(Scalar::FloatingPoint(number)) => number.0,
            _ => {
                self.at(
                    node,
                    path,
                    format!("expected a number greater than 0, found {}", kind_of(node)),
                );
                return None;
            }
        };
        if !(weight.is_finite() && weight > 0.0) {
            self.at(
                node,
                path,
                format!("expected a number greater than 0, found {weight}"),
            );
            return None;
        }
        Some(weight)
    }

    fn dimensions(&mut self, node: &MarkedYaml<'_>) -> Vec<DraftDimension> {
        let Some(items) = self.sequence(node, "dimensions", "a list of dimensions") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.at(
                node,
                "dimensions",
                "expected at least one dimension, found an empty list".to_string(),
            );
        }
        let mut drafts: Vec<DraftDimension> = Vec::new();
        for (dimension_idx, item) in items.iter().enumerate() {
            let path = format!("dimensions[{dimension_idx}]");
            let Some(fields) = self.mapping(item, &path, "a dimension", DIMENSION_KEYS) else {
                continue;
            };
            let id_path = format!("{path}.id");
            let id = fields
                .get("id")
                .and_then(|node| self.identifier(node, &id_path));
            let first = id
                .as_ref()
                .and_then(|id| drafts.iter().find(|d| d.id.as_ref() == Some(id)));
            if let (Some(id), Some(id_node), Some(first)) = (&id, fields.get("id"), first) {
                let message = format!(
                    "duplicate dimension id `{id}`; first defined at line {}",
                    first.line
                );
                self.at(id_node, &id_path, message);
            }
            let description = fields
                .get("description")
                .and_then(|node| self.text(node, &format!("{path}.description"), false))
                .unwrap_or_default();
            let (values, values_complete) = match fields.get("values") {
                Some(values_node) => self.values(values_node, &path, id.as_deref()),
                None => (Vec::new(), false),
            };
            drafts.push(DraftDimension {
                id,
                description,
                values,
                values_complete,
                line: position(item).0,
            });
        }
        drafts
    }

    fn values(
        &mut self,
        node: &MarkedYaml<'_>,
        dimension_path: &str,
        dimension_id: Option<&str>,
    ) -> (Vec<DraftValue>, bool) {
        let path = format!("{dimension_path}.values");
        let Some(items) = self.sequence(node, &path, "a list of values") else {
            return (Vec::new(), false);
        };
        if items.is_empty() {
            let name = dimension_id
                .map(|id| format!(" `{id}`"))
                .unwrap_or_default();
            self.at(
                node,
                &path,
                format!("dimension{name} has no values; expected at least one value"),
            );
        }
        let mut complete = true;
        let mut drafts: Vec<DraftValue> = Vec::new();
        for (value_idx, item) in items.iter().enumerate() {
            let value_path = format!("{path}[{value_idx}]");
            let Some(fields) = self.mapping(item, &value_path, "a value", VALUE_KEYS) else {
                complete = false;
                continue;
            };
            let id_path = format!("{value_path}.id");
            let id = fields
                .get("id")
                .and_then(|node| self.identifier(node, &id_path));
            complete &= id.is_some();
            let first = id
                .as_ref()
                .and_then(|id| drafts.iter().find(|d| d.id.as_ref() == Some(id)));
            if let (Some(id), Some(id_node), Some(first)) = (&id, fields.get("id"), first) {
                let within = dimension_id
                    .map(|d| format!(" in dimension `{d}`"))
                    .unwrap_or_default();
                let message = format!(
                    "duplicate value id `{id}`{within}; first defined at line {}",
                    first.value.line
                );
                self.at(id_node, &id_path, message);
            }
            let description = fields
                .get("description")
                .and_then(|node| self.text(node, &format!("{value_path}.description"), true))
                .unwrap_or_default();
            let keywords = match fields.get("keywords") {
                Some(node) => {
                    self.text_list(node, &format!("{value_path}.keywords"), "a list of words")
                }
                None => Vec::new(),
            };
            let examples = match fields.get("examples") {
                Some(node) => self.text_list(
                    node,
                    &format!("{value_path}.examples"),
                    "a list of messages",
                ),
                None => Vec::new(),
            };
            let weight = fields
                .get("weight")
                .and_then(|node| self.weight(node, &format!("{value_path}.weight")))
                .unwrap_or(1.0);
            drafts.push(DraftValue {
                value: Value {
                    id: id.clone().unwrap_or_default(),
                    description,
                    keywords,
                    examples,
                    weight,
                    line: position(item).0,
                },
                id,
            });
        }
        (drafts, complete)
    }

    fn exclusions(
        &mut self,
        node: &MarkedYaml<'_>,
        dimensions: &[DraftDimension],
    ) -> Vec<Exclusion> {
        let Some(items) = self.sequence(node, "exclusions", "a list of exclusion rules") else {
            return Vec::new();
        };
        let mut rules = Vec::new();
        for (rule_idx, item) in items.iter().enumerate() {
            let path = format!("exclusions[{rule_idx}]");
            let Some(fields) = self.mapping(item, &path, "an exclusion rule", EXCLUSION_KEYS)
            else {
                continue;
            };
            let reason = fields
                .get("reason")
                .and_then(|node| self.text(node, &format!("{path}.reason"), false));
            let condition = |checker: &mut Self, name: &str| {
                fields
                    .get(name)
                    .map(|node| checker.conditions(node, &format!("{path}.{name}"), dimensions))
            };
            let forbid = condition(self, "forbid");
            let when = condition(self, "when");
            let require = condition(self, "require");
            let rule = match (forbid, when, require) {
                (Some(forbid), None, None) => {
                    forbid.map(|conditions| ExclusionRule::Forbid { conditions })
                }
                (None, Some(when), Some(require)) => match (when, require) {
                    (Some(when), Some(require)) => Some(ExclusionRule::Require { when, require }),
                    _ => None,
                },
                (None, Some(_), None) => {
                    self.at(
                        item,
                        &format!("{path}.require"),
                        "a `when` rule needs `require`: the values a matching cell must have to stay"
                            .to_string(),
                    );
                    None
                }
                (None, None, Some(_)) => {
                    self.at(
                        item,
                        &format!("{path}.when"),
                        "a `require` rule needs `when`: the values that make the rule apply"
                            .to_string(),
                    );
                    None
                }
                (None, None, None) => {
                    self.at(
                        item,
                        &path,
                        "expected either `forbid`, or `when` together with `require`".to_string(),
                    );
                    None
                }
                (Some(_), _, _) => {
                    let node = fields.key_node("forbid").unwrap_or(item);
                    self.at(
                        node,
                        &path,
                        "expected either `forbid`, or `when` together with `require`, not both kinds in one rule"
                            .to_string(),
                    );
                    None
                }
            };
            let Some(rule) = rule else { continue };
            let exclusion = Exclusion {
                rule,
                reason,
                line: position(item).0,
            };
            self.judge_rule(&exclusion, item, &path, dimensions);
            rules.push(exclusion);
        }
        rules
    }

    /// Reads `{dimension: [values]}`; `None` if any part does not resolve.
    fn conditions(
        &mut self,
        node: &MarkedYaml<'_>,
        path: &str,
        dimensions: &[DraftDimension],
    ) -> Option<Vec<Condition>> {
        let YamlData::Mapping(mapping) = &untagged(node).data else {
            self.at(
                node,
                path,
                format!(
                    "expected a mapping from dimension id to value ids, e.g. `{{risk: [crisis]}}`, found {}",
                    kind_of(node)
                ),
            );
            return None;
        };
        if mapping.is_empty() {
            self.at(
                node,
                path,
                "expected at least one dimension, found an empty mapping".to_string(),
            );
            return None;
        }
        // Without every dimension id, an unmatched name may be one of the unreadable ones.
        let dimensions_complete = dimensions.iter().all(|d| d.id.is_some());
        let mut conditions = Vec::new();
        let mut resolved = true;
        for (key_node, values_node) in mapping.iter() {
            let Some(dimension_id) = self.key_name(key_node, path) else {
                resolved = false;
                continue;
            };
            let condition_path = field_path(path, &dimension_id);
            let dimension_idx = dimensions
                .iter()
                .position(|d| d.id.as_deref() == Some(&dimension_id));
            let Some(dimension_idx) = dimension_idx else {
                resolved = false;
                if dimensions_complete {
                    let known: Vec<&str> =
                        dimensions.iter().filter_map(|d| d.id.as_deref()).collect();
                    let hint = did_you_mean(&dimension_id, known.iter().copied());
                    self.at(
                        key_node,
                        &condition_path,
                        format!(
                            "unknown dimension `{dimension_id}`{hint}; expected one of {}",
                            known.join(", ")
                        ),
                    );
                }
                continue;
            };
            let dimension = &dimensions[dimension_idx];
            // A single value may be written without brackets.
            let value_nodes: Vec<(String, &MarkedYaml<'_>)> = match &untagged(values_node).data {
                YamlData::Sequence(items) => items
                    .iter()
                    .enumerate()
                    .map(|(item_idx, item)| (format!("{condition_path}[{item_idx}]"), item))
                    .collect(),
                _ => vec![(condition_path.clone(), values_node)],
            };
            if value_nodes.is_empty() {
                self.at(
                    values_node,
                    &condition_path,
                    "expected at least one value id, found an empty list".to_string(),
                );
                resolved = false;
                continue;
            }
            let mut values = Vec::new();
            let mut value_indices = Vec::new();
            for (value_path, value_node) in value_nodes {
                let Some(value_id) = self.text(value_node, &value_path, true) else {
                    resolved = false;
                    continue;
                };
                match dimension
                    .values
                    .iter()
                    .position(|v| v.id.as_deref() == Some(&value_id))
                {
                    Some(value_idx) => {
                        if !value_indices.contains(&value_idx) {
                            value_indices.push(value_idx);
                            values.push(value_id);
                        }
                    }
                    None => {
                        resolved = false;
                        if dimension.values_complete {
                            let known: Vec<&str> = dimension
                                .values
                                .iter()
                                .filter_map(|v| v.id.as_deref())
                                .collect();
                            let hint = did_you_mean(&value_id, known.iter().copied());
                            self.at(
                                value_node,
                                &value_path,
                                format!(
                                    "unknown value `{value_id}` in dimension `{dimension_id}`{hint}; expected one of {}",
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            conditions.push(Condition {
                dimension: dimension_id,
                values,
                dimension_index: dimension_idx,
                value_indices,
            });
        }
        if resolved { Some(conditions) } else { None }
    }

    /// Reports a rule that on its own removes every cell, or none.
    fn judge_rule(
        &mut self,
        exclusion: &Exclusion,
        node: &MarkedYaml<'_>,
        path: &str,
        dimensions: &[DraftDimension],
    ) {
        let mut referenced: Vec<usize> = match &exclusion.rule {
            ExclusionRule::Forbid { conditions } => {
                conditions.iter().map(|c| c.dimension_index).collect()
            }
            ExclusionRule::Require { when, require } => when
                .iter()
                .chain(require)
                .map(|c| c.dimension_index)
                .collect(),
        };
        referenced.sort_unstable();
        referenced.dedup();
        let sizes: Vec<usize> = referenced
            .iter()
            .map(|&d| dimensions[d].values.len())
            .collect();
        let product = sizes
            .iter()
            .fold(1u64, |acc, &n| acc.saturating_mul(n as u64));
        if product == 0 || product > RULE_CHECK_LIMIT {
            return;
        }
        let n_dimensions = dimensions.len();
        let mut cell = vec![0usize; n_dimensions];
        let (mut n_excluded, mut n_seen) = (0u64, 0u64);
        let mut odometer = vec![0usize; referenced.len()];
        'cells: loop {
            for (slot, &dimension_idx) in odometer.iter().zip(&referenced) {
                cell[dimension_idx] = *slot;
            }
            n_seen += 1;
            if exclusion.excludes(&cell) {
                n_excluded += 1;
            }
            // Advance the odometer over the referenced dimensions only.
            let mut position = odometer.len();
            loop {
                if position == 0 {
                    break 'cells;
                }
                position -= 1;
                odometer[position] += 1;
                if odometer[position] < sizes[position] {
                    break;
                }
                odometer[position] = 0;
            }
        }
        if n_excluded == n_seen {
            self.at(
                node,
                path,
                format!(
                    "this rule excludes every cell ({exclusion}); expected it to leave some cells"
                ),
            );
        } else if n_excluded == 0 {
            self.at(
                node,
                path,
                format!(
                    "this rule excludes no cell ({exclusion}); expected it to remove at least one"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::*;

    fn crate_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// What a taxonomy file turns into: its problems one per line, or `taxonomy show` output.
    fn render(source: &str, file: &str) -> String {
        match Taxonomy::parse(source, file) {
            Ok(taxonomy) => taxonomy.describe(),
            Err(error) => {
                let mut out = String::new();
                for problem in error.problems() {
                    out.push_str(&problem.to_string());
                    out.push('\n');
                }
                out
            }
        }
    }

    /// Compares `actual` with the expected file, writing it when missing or `UPDATE_EXPECT=1`.
    fn check_expected(expected_path: &Path, actual: &str) -> Result<(), String> {
        let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
        if update || !expected_path.exists() {
            std::fs::write(expected_path, actual)
                .map_err(|e| format!("cannot write {}: {e}", expected_path.display()))?;
            return Ok(());
        }
        let expected = std::fs::read_to_string(expected_path)
            .map_err(|e| format!("cannot read {}: {e}", expected_path.display()))?;
        if expected == actual {
            return Ok(());
        }
        Err(format!(
            "{} differs (rerun with UPDATE_EXPECT=1 to accept)\n--- expected\n{expected}--- actual\n{actual}",
            expected_path.display()
        ))
    }

    #[test]
    fn test_data_files_match_their_expected_output() {
        let dir = crate_dir().join("test_data/taxonomy");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("test_data/taxonomy exists")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        paths.sort();
        assert!(
            paths.len() >= 6,
            "expected the test files in {}",
            dir.display()
        );
        let mut failures = Vec::new();
        for path in &paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let file = format!("test_data/taxonomy/{name}");
            let source = std::fs::read_to_string(path).expect("test file is readable");
            let is_bad = name.starts_with("bad-");
            let parsed = Taxonomy::parse(&source, &file);
            if is_bad != parsed.is_err() {
                failures.push(format!(
                    "{file}: expected {}",
                    if is_bad { "problems" } else { "no problem" }
                ));
            }
            if let Err(message) =
                check_expected(&path.with_extension("expected"), &render(&source, &file))
            {
                failures.push(message);
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    fn example() -> Taxonomy {
        let path = crate_dir().join("../../examples/self-doubt/taxonomy.yaml");
        match Taxonomy::load(&path) {
            Ok(taxonomy) => taxonomy,
            Err(error) => panic!("{error}"),
        }
    }

    /// Whether a cell survives the rules, evaluated by ids rather than through `Exclusion`.
    fn allowed_by_names(taxonomy: &Taxonomy, names: &BTreeMap<&str, &str>) -> bool {
        let matches = |conditions: &[Condition]| {
            conditions.iter().all(|c| {
                c.values
                    .iter()
                    .any(|v| names.get(c.dimension.as_str()) == Some(&v.as_str()))
            })
        };
        taxonomy
            .exclusions
            .iter()
            .all(|exclusion| match &exclusion.rule {
                ExclusionRule::Forbid { conditions } => !matches(conditions),
                ExclusionRule::Require { when, require } => !matches(when) || matches(require),
            })
    }

    #[test]
    fn shipped_example_parses_and_counts_cells() {
        let taxonomy = example();
        let ids: Vec<&str> = taxonomy.dimensions.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["theme", "situation", "emotion", "risk"]);
        let sizes: Vec<usize> = taxonomy.dimensions.iter().map(|d| d.values.len()).collect();
        assert_eq!(sizes, [8, 8, 10, 3]);
        assert_eq!(taxonomy.cell_count_total(), 8 * 8 * 10 * 3);

        // Brute force over the full factorial, independent of `AllowedCells`.
        let mut n_allowed = 0u64;
        let mut all_weights = 0.0;
        for index in 0..taxonomy.cell_count_total() as usize {
            let mut rest = index;
            let mut cell = vec![0; sizes.len()];
            for (dimension_idx, &size) in sizes.iter().enumerate().rev() {
                cell[dimension_idx] = rest % size;
                rest /= size;
            }
            let names: BTreeMap<&str, &str> = taxonomy
                .dimensions
                .iter()
                .zip(&cell)
                .map(|(d, &v)| (d.id.as_str(), d.values[v].id.as_str()))
                .collect();
            let allowed = allowed_by_names(&taxonomy, &names);
            assert_eq!(
                taxonomy.is_allowed(&Cell(cell.clone())),
                allowed,
                "{names:?}"
            );
            if allowed {
                n_allowed += 1;
                all_weights += taxonomy.cell_weight(&Cell(cell));
            }
        }
        // Rule 1 removes crisis with 4 of 10 emotions (8*8*4 = 256 cells); rule 2 removes
        // procrastination in 2 situations (2*10*3 = 60); they share 2*4 = 8 cells.
        assert_eq!(n_allowed, 1920 - (256 + 60 - 8));
        assert_eq!(taxonomy.allowed_cell_count(), n_allowed);
        assert_eq!(taxonomy.allowed_cells().count() as u64, n_allowed);
        assert!(all_weights > 0.0);

        let mut previous: Option<Cell> = None;
        for cell in taxonomy.allowed_cells() {
            assert!(
                previous.as_ref().is_none_or(|p| p < &cell),
                "cells come in increasing order"
            );
            previous = Some(cell);
        }
    }

    #[test]
    fn shipped_example_values_are_documented_for_labellers() {
        let taxonomy = example();
        for dimension in &taxonomy.dimensions {
            assert!(!dimension.description.trim().is_empty(), "{}", dimension.id);
            for value in &dimension.values {
                let at = format!("{}.{} (line {})", dimension.id, value.id, value.line);
                assert!(value.description.len() >= 60, "{at}: description too short");
                assert!(
                    (5..=10).contains(&value.keywords.len()),
                    "{at}: {} keywords",
                    value.keywords.len()
                );
                assert!(
                    (3..=5).contains(&value.examples.len()),
                    "{at}: {} examples",
                    value.examples.len()
                );
            }
        }
        let risk = taxonomy.dimension("risk").expect("risk dimension");
        let crisis = risk.value_index("crisis").expect("crisis value");
        assert!(risk.values[crisis].weight < 1.0);
    }

    #[test]
    fn cell_key_round_trips() {
        let taxonomy = example();
        for cell in taxonomy.allowed_cells() {
            let key = taxonomy.cell_key(&cell);
            assert_eq!(taxonomy.parse_cell_key(&key), Some(cell));
        }
        let key = "theme=perfectionism|situation=job-interview|emotion=anxious|risk=none";
        let cell = taxonomy.parse_cell_key(key).expect("key parses");
        assert_eq!(taxonomy.cell_key(&cell), key);
        // Dimension order in the key does not matter; the rendered key is canonical.
        let shuffled = "risk=none|emotion=anxious|theme=perfectionism|situation=job-interview";
        assert_eq!(taxonomy.parse_cell_key(shuffled), Some(cell.clone()));
        for bad in [
            "",
            "theme=perfectionism",
            "theme=perfectionism|situation=job-interview|emotion=anxious",
            "theme=perfectionism|situation=job-interview|emotion=anxious|risk=maybe",
            "theme=perfectionism|situation=job-interview|emotion=anxious|risk=none|risk=none",
            "theme=perfectionism|situation=job-interview|emotion=anxious|colour=none",
            "theme perfectionism|situation=job-interview|emotion=anxious|risk=none",
        ] {
            assert_eq!(taxonomy.parse_cell_key(bad), None, "{bad:?}");
        }
        // A malformed cell never panics and never reads back.
        let malformed = Cell(vec![99, 0]);
        assert!(!taxonomy.is_allowed(&malformed));
        assert_eq!(taxonomy.cell_weight(&malformed), 0.0);
        assert_eq!(
            taxonomy.parse_cell_key(&taxonomy.cell_key(&malformed)),
            None
        );
    }

    #[test]
    fn exclusions_are_applied() {
        let source = std::fs::read_to_string(crate_dir().join("test_data/taxonomy/small.yaml"))
            .expect("small.yaml is readable");
        let taxonomy = Taxonomy::parse(&source, "small.yaml").expect("small.yaml is valid");
        let keys: Vec<String> = taxonomy
            .allowed_cells()
            .map(|c| taxonomy.cell_key(&c))
            .collect();
        assert_eq!(
            keys,
            [
                "mood=calm|place=home",
                "mood=calm|place=office",
                "mood=tense|place=home",
                "mood=tense|place=office",
            ]
        );
        assert_eq!(taxonomy.cell_count_total(), 6);
        assert_eq!(taxonomy.allowed_cell_count(), 4);
        for key in ["mood=furious|place=home", "mood=furious|place=office"] {
            let cell = taxonomy.parse_cell_key(key).expect("key parses");
            assert!(!taxonomy.is_allowed(&cell), "{key}");
        }
        let tense_office = taxonomy
            .parse_cell_key("mood=tense|place=office")
            .expect("key parses");
        assert_eq!(taxonomy.cell_weight(&tense_office), 0.5);
    }

    #[test]
    fn unreadable_file_says_why() {
        let error =
            Taxonomy::load(Path::new("no/such/taxonomy.yaml")).expect_err("file is missing");
        // The reason is the error's source, so an error chain prints it exactly once.
        assert_eq!(
            error.to_string(),
            "could not read taxonomy file no/such/taxonomy.yaml"
        );
        let reason = std::error::Error::source(&error).expect("the io error is the source");
        assert!(reason.to_string().contains("No such file"), "{reason}");
        assert!(error.problems().is_empty());
    }

    #[test]
    fn invalid_error_lists_every_problem() {
        let error =
            Taxonomy::parse("name: x\ndimensions: []\nextra: 1\n", "t.yaml").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "invalid taxonomy file t.yaml (2 problems):\n\
             t.yaml:2:13: dimensions: expected at least one dimension, found an empty list\n\
             t.yaml:3:1: extra: unknown key `extra`; expected one of `name`, `description`, `dimensions`, `exclusions`"
        );
    }

    #[test]
    fn json_names_ids_not_indices() {
        let taxonomy = Taxonomy::parse(
            "name: j\ndimensions:\n  - id: a\n    values:\n      - {id: x, description: X}\n      - {id: y, description: Y}\nexclusions:\n  - forbid: {a: y}\n",
            "j.yaml",
        )
        .expect("valid");
        let json = serde_json::to_value(&taxonomy).expect("serialises");
        assert_eq!(
            json["exclusions"][0]["rule"],
            serde_json::json!({"kind": "forbid", "conditions": [{"dimension": "a", "values": ["y"]}]})
        );
    }

    #[test]
    fn odd_inputs_are_reported_not_panicked_on() {
        let valid_tail = "\ndimensions: [{id: a, values: [{id: b, description: c}]}]\n";
        for source in [
            "\t- a",
            "&a [1]\n",
            "name: x\ndimensions: *nope\n",
            "!!binary aGVsbG8=",
            "name: !custom {a: 1}\ndimensions: !tag []\n",
            "? [complex]\n: key\n",
            "name: x\ndimensions:\n  - id: é\n    values: [{id: ü, description: d}]\n",
            "name: x\ndimensions:\n  - &d {id: a, values: [{id: b, description: c}]}\n  - *d\n",
            "name: x\ndimensions: [{id: a, values: [{id: b, description: c, weight: 1e400}]}]\n",
            "name: x\ndimensions: [{id: a, values: [{id: b, description: c}]}]\nexclusions: [{forbid: {a: [b, b]}}]\n",
            "name: x\ndimensions: [{id: a, values: [{id: b, description: c}]}]\nexclusions: [{forbid: {7: [b]}}]\n",
            "name: x\ndimensions: [{id: a, values: [{id: b, description: c}]}]\nexclusions: [{when: {a: b}, require: {a: [b]}}]\n",
            "name: x\ndimensions: [{id: a, values: [{description: c}]}]\nexclusions: [{forbid: {a: [zz]}}]\n",
            "",
            "---\n...\n",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ] {
            let error = Taxonomy::parse(source, "odd.yaml").expect_err(source);
            assert!(!error.problems().is_empty(), "{source:?}");
            for problem in error.problems() {
                assert!(
                    problem.line >= 1 && problem.column >= 1,
                    "{source:?}: {problem}"
                );
            }
        }
        let bom = format!("\u{feff}name: x{valid_tail}");
        assert!(Taxonomy::parse(&bom, "bom.yaml").is_ok());
    }

    #[test]
    fn summaries_keep_listings_on_one_line() {
        assert_eq!(summary("One. Two."), Some("One.".to_string()));
        assert_eq!(
            summary("\n  \n second line"),
            Some("second line".to_string())
        );
        let long = "word ".repeat(40);
        let cut = summary(&long).expect("summary");
        assert!(
            cut.ends_with("word...") && cut.chars().count() <= SUMMARY_MAX_CHARS,
            "{cut}"
        );
        assert_eq!(summary("   "), None);
    }

    #[test]
    fn typo_suggestions_need_a_close_match() {
        assert_eq!(
            closest("descripton", ["id", "description"]),
            Some("description")
        );
        assert_eq!(closest("valeus", ["id", "values"]), Some("values"));
        assert_eq!(closest("colour", ["id", "description", "values"]), None);
        assert_eq!(slug("Mood Swings"), "mood-swings");
        assert!(
            is_identifier("job-interview") && is_identifier("snake_case") && is_identifier("a1")
        );
        assert!(
            !is_identifier("Job")
                && !is_identifier("a--b")
                && !is_identifier("-a")
                && !is_identifier("")
        );
    }
}
