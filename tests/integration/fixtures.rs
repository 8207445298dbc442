//! The example bodies live in `../shared/fixtures`, beside the repository. The repository
//! keeps a copy so that a plain clone builds and tests on its own; this test keeps the
//! copy identical to the shared set wherever both are present.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::fixtures_dir;

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_fixture_copy_matches_the_shared_fixtures() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if !shared.is_dir() {
        // CI always has shared/ beside the clone; a plain clone does not.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have ../shared/fixtures beside the repository"
        );
        eprintln!("SKIPPED: no {} to compare with", shared.display());
        return;
    }
    let copy = fixtures_dir();
    assert_eq!(
        names(&shared),
        names(&copy),
        "tests/fixtures must hold exactly the files of ../shared/fixtures"
    );
    for name in names(&shared) {
        let expected = std::fs::read(shared.join(&name)).unwrap();
        let copied = std::fs::read(copy.join(&name)).unwrap();
        assert!(
            expected == copied,
            "tests/fixtures/{name} differs from ../shared/fixtures/{name}: copy it again"
        );
    }
}
