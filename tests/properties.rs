//! Randomized invariants of built graphs (proptest, small cases).

use proptest::prelude::*;
use sprig::build::{build_from_corpus, BuildConfig, GraphConfig};
use sprig::graph::{Graph, GraphKind};

const WORDS: &[&str] = &[
    "ok", "thanks", "see", "you", "soon", "late", "sorry", "!", "?", "lol", "call", "me", "😂",
];

fn corpus() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0..WORDS.len(), 1..6), 2..40)
}

/// Writes the corpus to a fresh temporary folder.
fn write(texts: &[Vec<usize>]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .map(|t| {
            let text: Vec<&str> = t.iter().map(|&i| WORDS[i]).collect();
            serde_json::json!({ "text": text.join(" ") }).to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    (dir, path)
}

fn build(path: &std::path::Path, kind: GraphKind, k: usize, threads: usize) -> Graph {
    let config = BuildConfig {
        graph: GraphConfig {
            kind,
            k,
            ..GraphConfig::default()
        },
        ..BuildConfig::default()
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| build_from_corpus(path, &config, &()).unwrap().graph)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn graphs_are_symmetric_sorted_loop_free_and_weighted_in_unit_interval(
        texts in corpus(),
        k in 1usize..6,
        bipartite in any::<bool>(),
    ) {
        let kind = if bipartite { GraphKind::Bipartite } else { GraphKind::Knn };
        let (_dir, path) = write(&texts);
        let g = build(&path, kind, k, 2);
        g.check_symmetric(std::path::Path::new("prop")).unwrap();
        for v in 0..g.n_nodes() {
            let (row, ws) = g.row(v);
            prop_assert!(row.windows(2).all(|w| w[0] < w[1]), "row {} sorted", v);
            prop_assert!(!row.contains(&(v as u32)), "no self-loop at {}", v);
            prop_assert!(ws.iter().all(|&w| w > 0.0 && w <= 1.0), "weights of {}: {:?}", v, ws);
            let texts = g.n_text_nodes();
            if kind == GraphKind::Knn {
                prop_assert!(row.iter().all(|&u| (u as usize) < texts), "text-text only");
            } else {
                // Bipartite: texts link only to features and features only to texts.
                prop_assert!(row.iter().all(|&u| ((u as usize) < texts) != (v < texts)));
            }
        }
        prop_assert_eq!(g.records().len(), texts.len());
    }

    #[test]
    fn one_and_two_threads_give_identical_bytes(
        texts in corpus(),
        k in 1usize..6,
        bipartite in any::<bool>(),
    ) {
        let kind = if bipartite { GraphKind::Bipartite } else { GraphKind::Knn };
        // The same file for both: the header records the corpus path.
        let (_dir, path) = write(&texts);
        let one = build(&path, kind, k, 1).to_bytes();
        let two = build(&path, kind, k, 2).to_bytes();
        prop_assert!(one == two);
    }
}
