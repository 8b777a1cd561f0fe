//! Text vectorizer throughput (fit + transform, materialised) on generated documents.
//!
//! ```text
//! cargo run --release --example text_bench -- --docs 200000 --out /tmp/docs.parquet
//! python3 benches/programs/text_sklearn.py --input /tmp/docs.parquet
//! ```
//!
//! Documents are 4–20 words drawn from a 5,000-word vocabulary with Zipf-like frequencies,
//! separated by single spaces, so every tokenization agrees. The file is written first (to
//! `--out`) and read back for every run; `benches/programs/text_sklearn.py` runs scikit-learn on it.

#[path = "../common/timing.rs"]
mod timing;

use timing::median_time;

use air::data::{
    CountVectorizer, Dataset, HashingVectorizer, Preprocessor, Tokenization, VectorOutput,
    polars::prelude::*,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn documents(n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    let vocab: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    // Inverse-CDF sampling of p(k) ∝ 1/(k+1).
    let weights: Vec<f64> = (0..vocab.len()).map(|k| 1.0 / (k as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    (0..n)
        .map(|_| {
            let words = rng.random_range(4..=20);
            (0..words)
                .map(|_| {
                    let u: f64 = rng.random();
                    vocab[cdf.partition_point(|&c| c < u).min(vocab.len() - 1)].as_str()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The text vectorizers on generated documents, the file read included.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Documents to generate.
    #[arg(long, default_value_t = 200_000)]
    docs: usize,
    /// Where they are written (for the Python comparison to read).
    #[arg(long, default_value = "/tmp/docs.parquet")]
    out: String,
}

fn main() -> anyhow::Result<()> {
    let Args { docs, out } = clap::Parser::parse();
    Dataset::from_polars(df!("doc" => documents(docs))?).write_parquet(&out)?;
    let ds = Dataset::read_parquet(&out)?;
    println!("{out}: {docs} documents; reading the file included; median of 3");
    median_time(
        "CountVectorizer (max_features 1000, array)",
        docs,
        3,
        || {
            let mut cv = CountVectorizer::new(["doc"])
                .with_tokenization(Tokenization::Whitespace)
                .with_max_features(1000)
                .with_output(VectorOutput::Array);
            Ok(cv.fit_transform(&ds)?.to_polars()?.height())
        },
    )?;
    median_time(
        "CountVectorizer (max_features 100, columns)",
        docs,
        3,
        || {
            let mut cv = CountVectorizer::new(["doc"])
                .with_tokenization(Tokenization::Whitespace)
                .with_max_features(100);
            Ok(cv.fit_transform(&ds)?.to_polars()?.height())
        },
    )?;
    median_time("HashingVectorizer (1024 buckets, array)", docs, 3, || {
        let hv = HashingVectorizer::new(["doc"], 1024)?
            .with_tokenization(Tokenization::Whitespace)
            .with_output(VectorOutput::Array);
        Ok(hv.transform(&ds)?.to_polars()?.height())
    })?;
    Ok(())
}
