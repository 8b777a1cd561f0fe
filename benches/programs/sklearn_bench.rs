//! Classical estimators' speed on the synthetic table (20 float features), next to
//! scikit-learn (`benches/programs/sklearn_bench.py` fits the same models on the same file).
//!
//! ```text
//! cargo run --release --example sklearn_bench -- --rows 25000 --out /tmp/sklearn.parquet
//! python3 benches/programs/sklearn_bench.py --input /tmp/sklearn.parquet
//! ```
//!
//! The first 80% of rows train, the rest are predicted. Prints fit seconds, prediction rows/s
//! and the test score (accuracy, R² or inertia) per estimator.

use std::time::Instant;

use air::{
    data::{Dataset, Matrix, polars::prelude::*, to_f64_matrix, to_f64_vector},
    train::sklearn::{
        DecisionTreeParams, Estimator, GaussianNbParams, KMeansParams, KNeighborsParams, Kernel,
        LinearRegressionParams, LogisticRegressionParams, RandomForestParams, RidgeParams,
        SklearnModel, SvcParams,
    },
};

fn rows(m: &Matrix<f64>, lo: usize, hi: usize) -> Matrix<f64> {
    Matrix {
        data: m.data[lo * m.cols..hi * m.cols].to_vec(),
        rows: hi - lo,
        cols: m.cols,
    }
}

/// Classical estimators' fit seconds and prediction rows/s on a synthetic table.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 25_000)]
    rows: u64,
    /// Where the table is written (for the Python comparison to read).
    #[arg(long, default_value = "/tmp/sklearn.parquet")]
    out: String,
}

fn main() -> anyhow::Result<()> {
    let Args { rows: n, out } = clap::Parser::parse();
    let signal =
        col("f0") * col("f1") + col("f2").abs() * lit(2.0) + col("f3") - col("f4") * lit(0.5);
    Dataset::from_polars(
        air::data::synthetic(n, 11)?
            .with_column("y_reg", signal.clone())
            .with_column("y_bin", signal.gt(lit(0.0)).cast(DataType::Int64))
            .drop_columns(&["cat_a", "cat_b"])
            .to_polars()?,
    )
    .write_parquet(&out)?;
    let df = Dataset::read_parquet(&out)?.to_polars()?;
    let features: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let x = to_f64_matrix(&df, &features)?;
    let total = x.rows;
    let split = total * 4 / 5;
    let (x_train, x_test) = (rows(&x, 0, split), rows(&x, split, total));
    let y_reg = to_f64_vector(&df, "y_reg")?;
    let y_bin = to_f64_vector(&df, "y_bin")?;
    println!(
        "{split} train / {} test rows × 20 features, {} threads",
        total - split,
        rayon::current_num_threads()
    );
    let svm_rows = 3000.min(split);
    let cases: Vec<(Estimator, &[f64], usize)> = vec![
        (
            Estimator::LinearRegression(LinearRegressionParams::new()),
            &y_reg,
            split,
        ),
        (Estimator::Ridge(RidgeParams::new()), &y_reg, split),
        (
            Estimator::LogisticRegression(LogisticRegressionParams::new()),
            &y_bin,
            split,
        ),
        (
            Estimator::DecisionTreeClassifier(DecisionTreeParams::new().with_max_depth(8)),
            &y_bin,
            split,
        ),
        (
            Estimator::RandomForestClassifier(
                RandomForestParams::new()
                    .with_n_estimators(50)
                    .with_max_depth(8),
            ),
            &y_bin,
            split,
        ),
        (
            Estimator::KNeighborsClassifier(KNeighborsParams::new()),
            &y_bin,
            split,
        ),
        (
            Estimator::GaussianNb(GaussianNbParams::new()),
            &y_bin,
            split,
        ),
        (
            Estimator::Svc(SvcParams::new().with_kernel(Kernel::default())),
            &y_bin,
            svm_rows,
        ),
        (Estimator::KMeans(KMeansParams::new(8)), &y_bin, split),
    ];
    for (estimator, y, fit_rows) in cases {
        let xf = rows(&x_train, 0, fit_rows);
        let start = Instant::now();
        let model =
            SklearnModel::fit(&estimator, &xf, Some(&y[..fit_rows]), features.clone(), "y")?;
        let fit_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        model.predict(&x_test)?;
        let predict_s = start.elapsed().as_secs_f64();
        let score = model.score(estimator.default_scoring(), &x_test, Some(&y[split..]))?;
        println!(
            "{:24} fit {fit_rows:>6} rows {fit_s:8.3} s   predict {:>10.0} rows/s   {} {score:.4}",
            estimator.name(),
            x_test.rows as f64 / predict_s,
            estimator.default_scoring().name(),
        );
    }
    Ok(())
}
