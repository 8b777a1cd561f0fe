//! The benchmark texts the transformer benchmarks and `benches/programs/train_torch.py` share:
//! text `i` is `8 + i % 41` words cycling through [`WORDS`], so lengths vary from short to
//! long (about 10 to 60 tokens) and both sides tokenise exactly the same strings.

/// The words the texts are made of.
pub(crate) const WORDS: [&str; 24] = [
    "the", "model", "reads", "a", "review", "of", "every", "film", "and", "says", "whether", "it",
    "was", "good", "or", "bad", "quickly", "on", "one", "machine", "without", "python", "cluster",
    "today",
];

/// Text `i`.
pub(crate) fn text(i: usize) -> String {
    (0..8 + i % 41)
        .map(|j| WORDS[(i * 7 + j) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text of at least `tokens` word-piece tokens (truncated to exactly that by the tokenizer).
pub(crate) fn long_text(i: usize, tokens: usize) -> String {
    (0..tokens)
        .map(|j| WORDS[(i + j) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}
