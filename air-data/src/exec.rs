//! Running a dataset's plan: lowering to polars, collecting, and streaming batches.

use std::{
    collections::VecDeque,
    num::NonZeroUsize,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, mpsc},
};

use polars::prelude::*;
use rayon::prelude::*;

use crate::{
    dataset::{BatchFn, Dataset, Node, Op, column_not_found, file_sources},
    error::{DataError, Result},
    source::{FileFormat, schema_difference},
};

/// A stream of batches of any size; [`Rebatch`] cuts it to an exact size.
pub(crate) type BatchStream = Box<dyn Iterator<Item = Result<DataFrame>> + Send>;

/// Turns a polars error into the clearest error the dataset's sources can explain.
pub(crate) fn explain(ds: &Dataset, error: PolarsError) -> DataError {
    let mut sources = Vec::new();
    file_sources(ds, &mut sources);
    if let Some(column) = missing_column(&error) {
        return DataError::Polars {
            context: format!("column {column:?} not found"),
            source: error,
        };
    }
    for source in sources {
        if let Some(explained) = source.diagnose(&error, &source.files.names()) {
            return explained;
        }
    }
    DataError::Polars {
        context: "running the dataset plan".to_owned(),
        source: error,
    }
}

/// The column a polars "column not found" error (possibly wrapped in context) names.
fn missing_column(error: &PolarsError) -> Option<String> {
    match error {
        PolarsError::ColumnNotFound(msg) => {
            Some(msg.split('"').nth(1).unwrap_or(msg.as_ref()).to_owned())
        }
        PolarsError::Context { error, .. } => missing_column(error),
        _ => None,
    }
}

/// The pure-polars plan of `ds`, or `None` when it contains a `map_batches`.
pub(crate) fn lower(ds: &Dataset) -> Result<Option<LazyFrame>> {
    Ok(match &*ds.node {
        Node::Frame(lf) => Some(lf.clone()),
        Node::Files(src) => Some(src.lazy()?),
        Node::Op { input, op } => match lower(input)? {
            Some(mut lf) => {
                let schema = lf.collect_schema().map_err(|e| explain(input, e))?;
                op.check(&schema)?;
                let mut out = op.apply(lf)?;
                if let Op::Filter(_) | Op::WithColumn(..) = op {
                    // Surface unknown columns in user expressions now, with the input's columns.
                    if let Err(e) = out.collect_schema()
                        && let Some(column) = missing_column(&e)
                    {
                        let context = match op {
                            Op::Filter(_) => "filter",
                            _ => "with_column",
                        };
                        return Err(column_not_found(&column, context, &schema));
                    }
                }
                Some(out)
            }
            None => None,
        },
        Node::Map { .. } => None,
        Node::Cached { input, frame } => {
            let mut guard = frame.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(collect(input)?);
            }
            guard.as_ref().map(|df| df.clone().lazy())
        }
        Node::Union(children) => {
            let mut lazies = Vec::with_capacity(children.len());
            for child in children {
                match lower(child)? {
                    Some(lf) => lazies.push(lf),
                    None => return Ok(None),
                }
            }
            check_union(&mut lazies)?;
            Some(concat(lazies, UnionArgs::default()).map_err(|e| explain(ds, e))?)
        }
    })
}

fn check_union(lazies: &mut [LazyFrame]) -> Result<()> {
    let mut schemas = Vec::with_capacity(lazies.len());
    for lf in lazies.iter_mut() {
        schemas.push(lf.collect_schema().map_err(|e| DataError::Polars {
            context: "union".to_owned(),
            source: e,
        })?);
    }
    for (i, schema) in schemas.iter().enumerate().skip(1) {
        if let Some(d) = schema_difference(&schemas[0], schema) {
            return Err(DataError::UnionSchemaMismatch {
                difference: format!("dataset {i}: {d}"),
            });
        }
    }
    Ok(())
}

/// Checks what polars would read without complaint but users must hear of before any row is
/// used: CSV records with missing fields and NUL bytes (see [`crate::csv_fields`]). Done once
/// per run of a plan, at its entry ([`collect`], [`stream`]), not again by the recursion.
fn check_sources(ds: &Dataset) -> Result<()> {
    let mut sources = Vec::new();
    file_sources(ds, &mut sources);
    sources.iter().try_for_each(|s| s.check_fields())
}

/// Runs the plan to one frame.
pub(crate) fn collect(ds: &Dataset) -> Result<DataFrame> {
    check_sources(ds)?;
    collect_checked(ds)
}

/// [`collect`] of a plan whose sources were checked.
fn collect_checked(ds: &Dataset) -> Result<DataFrame> {
    if let Some(lf) = lower(ds)? {
        return lf.collect().map_err(|e| explain(ds, e));
    }
    match &*ds.node {
        Node::Op { input, op } if !op.streams() => {
            let df = collect_checked(input)?;
            op.check(df.schema())?;
            let schema = df.schema().clone();
            op.apply(df.lazy())?
                .collect()
                .map_err(|e| match missing_column(&e) {
                    Some(column) => column_not_found(&column, op.name(), &schema),
                    None => explain(ds, e),
                })
        }
        Node::Union(children) => {
            let mut frames = Vec::with_capacity(children.len());
            for child in children {
                frames.push(collect_checked(child)?);
            }
            if let Some(first) = frames.first() {
                for (i, df) in frames.iter().enumerate().skip(1) {
                    if let Some(d) = schema_difference(first.schema(), df.schema()) {
                        return Err(DataError::UnionSchemaMismatch {
                            difference: format!("dataset {i}: {d}"),
                        });
                    }
                }
            }
            concat_frames(frames)
        }
        _ => concat_frames(stream_checked(ds, 1 << 16)?.collect::<Result<Vec<_>>>()?),
    }
}

pub(crate) fn concat_frames(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut iter = frames.into_iter();
    let Some(mut out) = iter.next() else {
        return Ok(DataFrame::empty());
    };
    for df in iter {
        out.vstack_mut_owned(df).map_err(|e| DataError::Polars {
            context: "concatenating batches (do all batches have the same columns and types?)"
                .to_owned(),
            source: e,
        })?;
    }
    out.rechunk_mut_par();
    Ok(out)
}

pub(crate) fn count(ds: &Dataset) -> Result<usize> {
    if let Node::Union(children) = &*ds.node {
        // polars' count fast path over a union needs 128-bit integers, which this build leaves
        // out; counting the parts is as cheap.
        return children.iter().map(count).sum();
    }
    // polars counts CSV and JSON rows without parsing them, so a file that fails to read would
    // still count; those are counted by reading them. Parquet footers hold the row counts.
    let mut sources = Vec::new();
    file_sources(ds, &mut sources);
    let counts_by_reading = sources.iter().any(|s| s.format != FileFormat::Parquet);
    if !counts_by_reading && let Some(lf) = lower(ds)? {
        let counted = lf.select([len().alias("len")]).collect().and_then(|df| {
            df.column("len")
                .and_then(|c| c.cast(&DataType::UInt64))
                .and_then(|c| c.u64().map(|ca| ca.get(0).unwrap_or(0)))
        });
        match counted {
            Ok(n) => return Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            // Any plan polars cannot count directly is counted by streaming it.
            Err(e) => tracing::debug!("count fast path failed ({e}); streaming instead"),
        }
    }
    let mut n = 0;
    for batch in stream(ds, 1 << 16)? {
        n += batch?.height();
    }
    Ok(n)
}

pub(crate) fn schema(ds: &Dataset) -> Result<Schema> {
    if let Some(mut lf) = lower(ds)? {
        return Ok(lf
            .collect_schema()
            .map_err(|e| explain(ds, e))?
            .as_ref()
            .clone());
    }
    match &*ds.node {
        Node::Op { input, op } => {
            let input_schema = schema(input)?;
            op.check(&input_schema)?;
            let mut lf = op.apply(DataFrame::empty_with_schema(&input_schema).lazy())?;
            Ok(lf
                .collect_schema()
                .map_err(|e| explain(ds, e))?
                .as_ref()
                .clone())
        }
        Node::Map { input, f, .. } => {
            // One row to learn the function's output: headers, not data, are being read.
            let sample = collect_checked(&input.slice(0, 1))?;
            let sample = if sample.width() == 0 {
                DataFrame::empty_with_schema(&schema(input)?)
            } else {
                sample
            };
            let out = call_user(f.as_ref(), sample, 0, 0)?;
            Ok(out.schema().as_ref().clone())
        }
        Node::Union(children) => schema(&children[0]),
        Node::Frame(_) | Node::Files(_) | Node::Cached { .. } => {
            unreachable!("pure polars and cached nodes always lower")
        }
    }
}

/// Streams the plan's rows in batches of roughly `hint` rows (exact sizes come from
/// [`Rebatch`]). Memory stays bounded unless the plan has a barrier (sort, shuffle, group by,
/// repartition) or a non-streaming op after a `map_batches`.
pub(crate) fn stream(ds: &Dataset, hint: usize) -> Result<BatchStream> {
    check_sources(ds)?;
    stream_checked(ds, hint)
}

/// [`stream`] of a plan whose sources were checked.
fn stream_checked(ds: &Dataset, hint: usize) -> Result<BatchStream> {
    let hint = hint.max(1);
    if let Node::Op {
        input,
        op: Op::Repartition(n),
    } = &*ds.node
    {
        let df = collect_checked(input)?;
        return Ok(Box::new(blocks(df, *n).into_iter().map(Ok)));
    }
    if let Some(lf) = lower(ds)? {
        return polars_stream(ds.clone(), lf, hint);
    }
    match &*ds.node {
        Node::Op { input, op } if op.streams() => {
            let inner = stream_checked(input, hint)?;
            Ok(Box::new(OpStream {
                inner,
                op: op.clone(),
                skipped: 0,
                taken: 0,
                done: false,
            }))
        }
        Node::Map {
            input,
            f,
            batch_size,
        } => {
            let inner = stream_checked(input, batch_size.unwrap_or(hint))?;
            let inner: BatchStream = match batch_size {
                Some(size) => Box::new(Rebatch::new(inner, *size, false)),
                None => inner,
            };
            Ok(Box::new(MapStream::new(inner, f.clone())))
        }
        Node::Union(children) => {
            let children = children.clone();
            let mut streams = Vec::with_capacity(children.len());
            for child in &children {
                streams.push(stream_checked(child, hint)?);
            }
            Ok(Box::new(streams.into_iter().flatten()))
        }
        _ => {
            let df = collect_checked(ds)?;
            Ok(Box::new(SliceStream {
                df,
                hint,
                offset: 0,
            }))
        }
    }
}

fn blocks(df: DataFrame, n: usize) -> Vec<DataFrame> {
    let rows = df.height();
    let (base, extra) = (rows / n, rows % n);
    let mut offset = 0;
    (0..n)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let block = df.slice(i64::try_from(offset).unwrap_or(i64::MAX), len);
            offset += len;
            block
        })
        .collect()
}

/// polars' streaming engine runs the plan on its own threads and hands batches to a callback;
/// a channel of two batches between it and the consumer bounds memory, and closing the channel
/// (dropping the iterator) stops the query.
fn polars_stream(ds: Dataset, lf: LazyFrame, hint: usize) -> Result<BatchStream> {
    let (tx, rx) = mpsc::sync_channel::<PolarsResult<DataFrame>>(2);
    let err_tx = tx.clone();
    let plan = lf
        .sink_batches(
            PlanCallback::new(move |df: DataFrame| Ok(tx.send(Ok(df)).is_err())),
            true,
            NonZeroUsize::new(hint),
        )
        .map_err(|e| explain(&ds, e))?;
    std::thread::Builder::new()
        .name("air-data-stream".to_owned())
        .spawn(move || {
            if let Err(e) = plan.collect_with_engine(Engine::Streaming) {
                let _ = err_tx.send(Err(e));
            }
        })
        .map_err(|e| DataError::Io {
            action: "starting a reader thread for",
            path: format!("{ds:?}").into(),
            source: e,
        })?;
    Ok(Box::new(
        rx.into_iter().map(move |r| r.map_err(|e| explain(&ds, e))),
    ))
}

struct SliceStream {
    df: DataFrame,
    hint: usize,
    offset: usize,
}

impl Iterator for SliceStream {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.df.height() {
            return None;
        }
        let batch = self
            .df
            .slice(i64::try_from(self.offset).unwrap_or(i64::MAX), self.hint);
        self.offset += batch.height();
        Some(Ok(batch))
    }
}

/// A streaming op applied batch by batch.
struct OpStream {
    inner: BatchStream,
    op: Op,
    skipped: usize,
    taken: usize,
    done: bool,
}

impl Iterator for OpStream {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let batch = match self.inner.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            if let Op::Slice { offset, len } = self.op {
                let h = batch.height();
                let skip = (offset - self.skipped).min(h);
                self.skipped += skip;
                let take = (len - self.taken).min(h - skip);
                self.taken += take;
                if self.taken == len {
                    self.done = true;
                }
                if take == 0 {
                    continue;
                }
                return Some(Ok(batch.slice(i64::try_from(skip).unwrap_or(0), take)));
            }
            if let Err(e) = self.op.check(batch.schema()) {
                return Some(Err(e));
            }
            return Some(self.op.apply(batch.lazy()).and_then(|lf| {
                lf.collect().map_err(|e| DataError::Polars {
                    context: format!("applying {} after map_batches", self.op.name()),
                    source: e,
                })
            }));
        }
    }
}

/// Cuts a stream of any-sized frames into frames of exactly `size` rows (the last one may be
/// shorter, or dropped with `drop_last`).
pub(crate) struct Rebatch {
    inner: BatchStream,
    size: usize,
    drop_last: bool,
    pending: VecDeque<DataFrame>,
    pending_rows: usize,
    done: bool,
}

impl Rebatch {
    pub(crate) fn new(inner: BatchStream, size: usize, drop_last: bool) -> Self {
        Self {
            inner,
            size,
            drop_last,
            pending: VecDeque::new(),
            pending_rows: 0,
            done: false,
        }
    }

    fn cut(&mut self, rows: usize) -> Result<DataFrame> {
        let mut parts = Vec::new();
        let mut need = rows;
        while need > 0 {
            let front = self.pending.pop_front().expect("pending holds enough rows");
            let h = front.height();
            if h <= need {
                need -= h;
                parts.push(front);
            } else {
                let n = i64::try_from(need).unwrap_or(i64::MAX);
                let (head, tail) = front.split_at(n);
                parts.push(head);
                self.pending.push_front(tail);
                need = 0;
            }
        }
        self.pending_rows -= rows;
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        concat_frames(parts)
    }
}

impl Iterator for Rebatch {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.pending_rows < self.size {
            match self.inner.next() {
                Some(Ok(df)) => {
                    if df.height() > 0 {
                        self.pending_rows += df.height();
                        self.pending.push_back(df);
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => self.done = true,
            }
        }
        if self.pending_rows >= self.size {
            return Some(self.cut(self.size));
        }
        if self.pending_rows == 0 || self.drop_last {
            self.pending.clear();
            self.pending_rows = 0;
            return None;
        }
        Some(self.cut(self.pending_rows))
    }
}

pub(crate) fn call_user(
    f: &dyn BatchFn,
    batch: DataFrame,
    index: usize,
    first_row: usize,
) -> Result<DataFrame> {
    let end_row = first_row + batch.height();
    let error = |message: String| DataError::UserFunction {
        batch: index,
        first_row,
        end_row,
        message,
    };
    match catch_unwind(AssertUnwindSafe(|| f.call(batch))) {
        Ok(Ok(df)) => Ok(df),
        Ok(Err(e)) => Err(error(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".to_owned());
            Err(error(format!("panicked: {message}")))
        }
    }
}

/// Runs the user function over a window of batches at a time on rayon's global pool; the
/// window's outputs are yielded in input order before the next window starts.
struct MapStream {
    inner: BatchStream,
    f: Arc<dyn BatchFn>,
    ready: VecDeque<Result<DataFrame>>,
    window: usize,
    next_index: usize,
    next_row: usize,
    done: bool,
}

impl MapStream {
    fn new(inner: BatchStream, f: Arc<dyn BatchFn>) -> Self {
        Self {
            inner,
            f,
            ready: VecDeque::new(),
            window: rayon::current_num_threads().max(2),
            next_index: 0,
            next_row: 0,
            done: false,
        }
    }

    fn fill(&mut self) {
        let mut inputs = Vec::with_capacity(self.window);
        let mut input_error = None;
        while inputs.len() < self.window {
            match self.inner.next() {
                Some(Ok(df)) => {
                    inputs.push((self.next_index, self.next_row, df));
                    self.next_row += inputs.last().map_or(0, |(_, _, d)| d.height());
                    self.next_index += 1;
                }
                Some(Err(e)) => {
                    self.done = true;
                    input_error = Some(e);
                    break;
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        let f = self.f.as_ref();
        let outputs: Vec<Result<DataFrame>> = inputs
            .into_par_iter()
            .map(|(index, row, df)| call_user(f, df, index, row))
            .collect();
        self.ready.extend(outputs);
        if let Some(e) = input_error {
            self.ready.push_back(Err(e));
        }
    }
}

impl Iterator for MapStream {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done {
            self.fill();
        }
        let out = self.ready.pop_front()?;
        if out.is_err() {
            // Stop at the first failure; later batches are not run.
            self.done = true;
            self.ready.clear();
        }
        Some(out)
    }
}
