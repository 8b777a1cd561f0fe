"""The training and embedding benchmarks of issue 20, in PyTorch, on this machine's CPU.

    pip install torch sentence-transformers
    python3 benches/programs/train_torch.py --model /tmp/minilm [--threads 1 2]

Next to `train_bench` (part a) and `transformer_bench` (parts b and c), with the same shapes:

  (a) the MLP 20→64→64→1, binary cross-entropy, Adam, batch 256, one epoch over 1M rows;
  (b) the encoder with a 2-class head (mean pooling, linear), AdamW, forward + backward +
      step on batches of 16 texts of exactly 128 tokens;
  (c) sentence embeddings (sentence-transformers' `encode`, batch 32, normalised) of 2,000
      texts of varying length, the same texts as benches/common/texts.rs.

Prints samples/s per part for each thread count (torch.set_num_threads).
"""

import argparse
import time

import torch

WORDS = [
    "the", "model", "reads", "a", "review", "of", "every", "film", "and", "says", "whether",
    "it", "was", "good", "or", "bad", "quickly", "on", "one", "machine", "without", "python",
    "cluster", "today",
]


def text(i: int) -> str:
    return " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(8 + i % 41))


def long_text(i: int, tokens: int) -> str:
    return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(tokens))


def mlp(rows: int, batch: int) -> float:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 20, generator=g)
    y = ((x[:, 0] + x[:, 1]) > 0).float().unsqueeze(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for s in range(0, rows, batch):
        optim.zero_grad()
        loss = loss_fn(model(x[s : s + batch]), y[s : s + batch])
        loss.backward()
        optim.step()
    return rows / (time.perf_counter() - start)


class Classifier(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, ids, mask):
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


def encoder_steps(model_dir: str, batch: int, seq: int, steps: int) -> float:
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = Classifier(AutoModel.from_pretrained(model_dir)).train()
    enc = tok([long_text(i, seq) for i in range(batch)], truncation=True, max_length=seq,
              padding=True, return_tensors="pt")
    assert enc["input_ids"].shape[1] == seq, enc["input_ids"].shape
    labels = torch.tensor([i % 2 for i in range(batch)])
    optim = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    timed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        optim.zero_grad()
        loss = loss_fn(model(enc["input_ids"], enc["attention_mask"]), labels)
        loss.backward()
        optim.step()
        if step > 0:
            timed += time.perf_counter() - start
    return steps * batch / timed


def embed(model_dir: str, n: int) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    texts = [text(i) for i in range(n)]
    model.encode(texts[:32], batch_size=32)
    start = time.perf_counter()
    out = model.encode(texts, batch_size=32, normalize_embeddings=True)
    assert out.shape == (n, 384)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="/tmp/minilm")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--texts", type=int, default=2000)
    p.add_argument("--part", choices=["mlp", "train", "embed", "all"], default="all")
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_interop_threads()} interop threads")
    for threads in a.threads:
        torch.set_num_threads(threads)
        if a.part in ("mlp", "all"):
            print(f"(a) MLP 20-64-64-1, batch 256, {threads} thread(s): "
                  f"{mlp(a.rows, 256):>10.0f} samples/s")
        if a.part in ("train", "all"):
            print(f"(b) encoder fwd+bwd+AdamW, batch 16 x 128 tokens, {threads} thread(s): "
                  f"{encoder_steps(a.model, 16, 128, a.steps):>8.1f} samples/s")
        if a.part in ("embed", "all"):
            print(f"(c) sentence-transformers encode, {a.texts} texts, {threads} thread(s): "
                  f"{embed(a.model, a.texts):>8.1f} texts/s")


if __name__ == "__main__":
    main()
