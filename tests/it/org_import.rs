//! `caseguard org import` and `caseguard demo` through the real binary, on
//! both backends: good files land whole, a bad row changes nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use caseguard::db::organisations::{self, OrganisationRow};
use caseguard::domain::org::AgencyType;

use crate::helpers::{Backend, TestDb, caseguard, stderr, stdout};

on_both_backends!(
    toml_import_creates_then_updates,
    csv_import_with_a_bad_row_changes_nothing,
    bad_toml_rows_are_reported_with_their_lines,
    import_cannot_break_the_stored_tree,
    demo_loads_a_whole_district_once,
);

const DISTRICT_TOML: &str = r#"# Test district
[[organisation]]
kind = "area"
code = "T"
name = "Tỉnh Thử"
level = "province"

[[organisation]]
kind = "area"
code = "T-X1"
name = "Xã Một"
parent = "T"
level = "commune"

[[organisation]]
kind = "school"
code = "T-X1-TH"
name = "Trường Tiểu học Một"
parent = "T-X1"
level = "primary"

[[organisation]]
kind = "agency"
code = "T-CA"
name = "Công an"
parent = "T"
agency_type = "police"
"#;

struct Cli {
    db: TestDb,
}

impl Cli {
    fn new(backend: Backend) -> Option<Self> {
        Some(Self {
            db: TestDb::create(backend)?,
        })
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.db.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let data = self.db.data_dir();
        caseguard(
            self.db.dir.path(),
            &[
                ("CASEGUARD_DATABASE_URL", self.db.url.as_str()),
                ("CASEGUARD_DATA_DIR", data.to_str().unwrap()),
            ],
            args,
        )
    }

    fn import(&self, file: &str) -> std::process::Output {
        self.run(&["org", "import", file])
    }

    fn organisations(&self) -> Vec<OrganisationRow> {
        organisations::all(&mut self.db.connect()).unwrap_or_default()
    }
}

async fn toml_import_creates_then_updates(backend: Backend) {
    let Some(cli) = Cli::new(backend) else { return };
    cli.write("district.toml", DISTRICT_TOML);
    let first = cli.import("district.toml");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("4 created, 0 updated, 0 unchanged"),
        "{}",
        stdout(&first)
    );

    let rows = cli.organisations();
    let by_code: HashMap<&str, &OrganisationRow> =
        rows.iter().map(|r| (r.code.as_str(), r)).collect();
    let school = by_code["T-X1-TH"];
    assert_eq!(school.kind, "school");
    assert_eq!(school.school_level.as_deref(), Some("primary"));
    assert_eq!(
        school.parent_id.as_deref(),
        Some(by_code["T-X1"].id.as_str())
    );
    assert_eq!(by_code["T"].parent_id, None);
    assert_eq!(by_code["T-CA"].agency_type.as_deref(), Some("police"));
    assert_eq!(by_code["T-X1"].name, "Xã Một");

    let again = cli.import("district.toml");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 created, 0 updated, 4 unchanged"),
        "{}",
        stdout(&again)
    );

    // Communes merge: the school moves to a new commune and is renamed.
    cli.write(
        "merger.csv",
        "kind,code,name,parent,level\narea,T-X2,Xã Hai,T,commune\nschool,T-X1-TH,Trường Tiểu học Hai,T-X2,primary\n",
    );
    let merger = cli.import("merger.csv");
    assert!(merger.status.success(), "{}", stderr(&merger));
    assert!(
        stdout(&merger).contains("1 created, 1 updated, 0 unchanged"),
        "{}",
        stdout(&merger)
    );
    let rows = cli.organisations();
    let by_code: HashMap<&str, &OrganisationRow> =
        rows.iter().map(|r| (r.code.as_str(), r)).collect();
    assert_eq!(
        by_code["T-X1-TH"].parent_id.as_deref(),
        Some(by_code["T-X2"].id.as_str())
    );
    assert_eq!(by_code["T-X1-TH"].name, "Trường Tiểu học Hai");
}

async fn csv_import_with_a_bad_row_changes_nothing(backend: Backend) {
    let Some(cli) = Cli::new(backend) else { return };
    cli.write(
        "schools.csv",
        "kind,code,name,parent,level,agency_type\n\
         area,D,Huyện Thử,,district,\n\
         area,D-C1,Xã Một,D,commune,\n\
         school,D-C1-MN,Trường Mầm non Một,D-C1,kindergarten,\n\
         school,D-C1-TH,Trường Tiểu học Một,D-C1,primary,\n\
         school,D-C1-THPT,Trường THPT Một,D-C1,high_school,\n\
         agency,D-YT,Trung tâm Y tế,D,,health\n",
    );
    let output = cli.import("schools.csv");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("schools.csv: line 6: unknown school level `high_school`"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        cli.organisations().is_empty(),
        "a bad file left rows behind"
    );

    // The same file, fixed, imports whole.
    cli.write(
        "fixed.csv",
        "kind,code,name,parent,level,agency_type\narea,D,Huyện Thử,,district,\nagency,D-YT,Trung tâm Y tế,D,,health\n",
    );
    let fixed = cli.import("fixed.csv");
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    assert_eq!(cli.organisations().len(), 2);
}

async fn bad_toml_rows_are_reported_with_their_lines(backend: Backend) {
    let Some(cli) = Cli::new(backend) else { return };
    let text = DISTRICT_TOML.to_owned()
        + "\n[[organisation]]\nkind = \"school\"\ncode = \"T-X1-TH\"\nname = \"Duplicate\"\nparent = \"T-X1\"\nlevel = \"primary\"\n"
        + "\n[[organisation]]\nkind = \"agency\"\ncode = \"T-NOPE\"\nname = \"Nowhere\"\nparent = \"T-MISSING\"\nagency_type = \"police\"\n";
    cli.write("bad.toml", &text);
    let output = cli.import("bad.toml");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    // Each row is reported at its `[[organisation]]` header or first key.
    let duplicate_header = line_of("name = \"Duplicate\"") - 3;
    assert!(
        err.lines().any(|l| l.contains("already appears")
            && (l.contains(&format!("line {duplicate_header}:"))
                || l.contains(&format!("line {}:", duplicate_header + 1)))),
        "{err}"
    );
    assert!(cli.organisations().is_empty());

    // Unknown keys are named with their line.
    cli.write(
        "typo.toml",
        "[[organisation]]\nkind = \"area\"\ncode = \"A\"\nname = \"A\"\nlevle = \"district\"\n",
    );
    let typo = cli.import("typo.toml");
    assert_eq!(typo.status.code(), Some(1));
    assert!(stderr(&typo).contains("levle"), "{}", stderr(&typo));
    assert!(stderr(&typo).contains("line 5"), "{}", stderr(&typo));

    // Missing parents are found across the file and the store.
    cli.write("orphan.toml", "[[organisation]]\nkind = \"school\"\ncode = \"S\"\nname = \"S\"\nparent = \"GHOST\"\nlevel = \"primary\"\n");
    let orphan = cli.import("orphan.toml");
    assert_eq!(orphan.status.code(), Some(1));
    assert!(
        stderr(&orphan).contains("line 1: parent GHOST is neither in the file nor stored"),
        "{}",
        stderr(&orphan)
    );
}

async fn import_cannot_break_the_stored_tree(backend: Backend) {
    let Some(cli) = Cli::new(backend) else { return };
    cli.write("district.toml", DISTRICT_TOML);
    assert!(cli.import("district.toml").status.success());
    let before = cli.organisations();

    // The province under its own commune: a cycle through stored rows.
    cli.write(
        "cycle.csv",
        "kind,code,name,parent,level\narea,T,Tỉnh Thử,T-X1,province\n",
    );
    let cycle = cli.import("cycle.csv");
    assert_eq!(cycle.status.code(), Some(1));
    assert!(
        stderr(&cycle).contains("line 2: T has a cycle among its ancestors"),
        "{}",
        stderr(&cycle)
    );

    // A stored school cannot become an area, and a school cannot have children.
    cli.write(
        "kinds.csv",
        "kind,code,name,parent,level\narea,T-X1-TH,Now an area,T,commune\nschool,T-NEW,New,T-CA,primary\n",
    );
    let kinds = cli.import("kinds.csv");
    assert_eq!(kinds.status.code(), Some(1));
    let err = stderr(&kinds);
    assert!(
        err.contains("line 2: T-X1-TH is already stored as a school"),
        "{err}"
    );
    assert!(
        err.contains("line 3: parent T-CA is a agency")
            || err.contains("line 3: parent T-CA is an agency"),
        "{err}"
    );
    assert_eq!(
        cli.organisations(),
        before,
        "a refused import changed the tree"
    );
}

async fn demo_loads_a_whole_district_once(backend: Backend) {
    let Some(cli) = Cli::new(backend) else { return };
    let first = cli.run(&["demo"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let rows = cli.organisations();
    let schools = rows.iter().filter(|r| r.kind == "school").count();
    let communes = rows
        .iter()
        .filter(|r| r.area_level.as_deref() == Some("commune"))
        .count();
    assert!(
        schools >= 6 && communes >= 2,
        "{schools} schools, {communes} communes"
    );
    for agency_type in AgencyType::ALL {
        assert!(
            rows.iter()
                .any(|r| r.agency_type.as_deref() == Some(agency_type.as_str())),
            "{agency_type}"
        );
    }
    let second = cli.run(&["demo"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains(&format!("0 created, 0 updated, {} unchanged", rows.len())),
        "{}",
        stdout(&second)
    );
    assert_eq!(cli.organisations(), rows);
}
