#!/usr/bin/env bash
# make demo: train on the built-in chatterbot Chinese corpus for a fixed 40 epochs, then answer three
# fixed questions with the real commands. Run from the repo root as
#   PY=.venv/bin/python DEMO=$PWD/demo_out bash chatbot/demo.sh   (DEMO_EPOCHS shortens it; its test uses that)
set -euo pipefail
PY=${PY:-python}
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/chatbot"
mkdir -p "$OUT"
cd "$(dirname "$0")"   # run the scripts from inside chatbot/, as the originals ran `th train.lua`

# 552 pairs is a corpus to learn by heart, not to generalise from: no held-out split (--valSetSize 0,
# so model.pt is the lowest training perplexity) and no early stopping. The work is fixed (40 epochs of
# 35 batches), not the time, so a busy machine gives the same model, only later.
"$PY" train.py --dataDir "$OUT/data" --tokens word --hiddenSize 128 --batchSize 16 --learningRate 0.003 \
    --dropout 0.1 --valSetSize 0 --patience 0 --maxEpoch "${DEMO_EPOCHS:-40}" --printEvery 200 --seed 123 --threads 1 \
    | tee "$OUT/train.log"

printf '%s\n' "你好" "你是谁" "你的爱好是什么" > "$OUT/questions.txt"
"$PY" eval.py --dataDir "$OUT/data" --input "$OUT/questions.txt" | tee "$OUT/answers.txt"
"$PY" eval.py --dataDir "$OUT/data" --input "$OUT/questions.txt" --beam 5 > "$OUT/answers_beam5.txt"
printf '%s\n' "你好" "你是谁" quit | "$PY" eval.py --dataDir "$OUT/data" --temperature 0.8 > "$OUT/chat_sampled.txt"
echo "chatbot demo: $OUT/answers.txt (greedy), $OUT/answers_beam5.txt (beam 5), $OUT/chat_sampled.txt (you> loop, --temperature 0.8), model in $OUT/data/model.pt"
