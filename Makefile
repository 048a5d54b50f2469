# zsnas-bench — `make help` lists the targets.
SHELL := /bin/bash
PY    ?= python3.11
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help install test test-slow reproduce reproduce-paper reproduce-aggregate reproduce-peers reproduce-suite-zero reproduce-cross-space reproduce-search search sweep-shards verify-engine gpu-check gpu-bundle convert verify-data ui bench bench-peers clean

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) (the local torch wheel is for Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its test extras

TEST_WORKERS ?= 2
test: $(STAMP)  ## run the default test suite on TEST_WORKERS=2 processes (well under 20 minutes, CPU only)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15

test-slow: $(STAMP)  ## run the slow tests too
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m 'slow or not slow'

CROSS_SPACES := nb101 nb201 darts
CS_N ?= 10
reproduce: $(STAMP)  ## quick CPU profile: WRCor & co. on 100 NB201 archs; every proxy x 3 datasets x 3 seeds on 10; cross-space on 10 per space; R/RE/RL search x 3 seeds on ImageNet16-120 -> results/
	OMP_NUM_THREADS=2 $(BIN)/harness run experiment=nb201_quick threads=2 hydra.run.dir=runs/nb201_quick/latest
	$(BIN)/harness report --records runs/nb201_quick/latest --out results --name nb201_quick
	$(BIN)/harness reference check results/reference/nb201_quick.json runs/nb201_quick/latest
	OMP_NUM_THREADS=2 $(BIN)/harness run --multirun experiment=proxies_quick threads=2 hydra.sweep.dir=runs/proxies_quick/latest
	$(BIN)/harness report --records runs/proxies_quick/latest --out results --name proxies_quick
	for s in $(CROSS_SPACES); do OMP_NUM_THREADS=2 $(BIN)/harness run --multirun experiment=cross_space_$$s archs.select=first archs.n=$(CS_N) threads=2 hydra.sweep.dir=runs/cross_space_quick/$$s || exit 1; done
	$(BIN)/harness report --records runs/cross_space_quick --out results --name cross_space_quick
	OMP_NUM_THREADS=2 $(BIN)/harness search --multirun experiment=search_nb201_quick threads=2 dataset=ImageNet16-120 objective=wrcor,valacc12 'seed=range(0,3)' profile=search_quick hydra.sweep.dir=runs/search_quick/latest
	$(BIN)/harness search-report --records runs/search_quick/latest --out results --name search_quick

PAPER_WORKERS ?= 2
# $(call sharded,OVERRIDES,DIR): one scoring job as PAPER_WORKERS processes (shard=i/n, run dirs DIR-i)
# sharing the store, all waited for (a failed shard fails the recipe)
sharded = pids=; for i in $$(seq 0 $$(($(PAPER_WORKERS) - 1))); do \
	  OMP_NUM_THREADS=1 $(BIN)/harness run $(1) threads=1 shard=$$i/$(PAPER_WORKERS) tracking=none \
	    hydra.run.dir=$(2)-$$i & pids="$$pids $$!"; done; for p in $$pids; do wait $$p; done
PAPER_SEEDS   ?= 0 1 2
PAPER_DATA    ?= ImageNet16-120 cifar100 cifar10
PAPER_SEARCH  ?=
reproduce-paper: $(STAMP)  ## the paper's NB201 protocol (about a day on 2 CPU cores): every proxy + the WRCor ablation on 1000 archs x 3 datasets x 3 seeds, R/RE/RL x 7 objectives x N=1000 x 10 seeds; published numbers beside ours -> results/ (resumable; PAPER_WORKERS=2 processes)
	set -e; for seed in $(PAPER_SEEDS); do for ds in $(PAPER_DATA); do \
	  $(call sharded,experiment=proxies_1000 dataset=$$ds seed=$$seed,runs/paper/shards/s$$seed-$$ds); done; done
	$(BIN)/harness run --multirun experiment=proxies_1000 hydra.sweep.dir=runs/paper/proxies
	$(BIN)/harness paper-report --records runs/paper/proxies --out results --name paper_nb201
	for ds in $(PAPER_DATA); do f=results/reference/paper_nb201_$$ds.json; \
	  if [ -f $$f ]; then $(BIN)/harness reference check $$f runs/paper/proxies || exit 1; \
	  else echo "reproduce-paper: no reference band for $$ds yet ($$f): its table is not checked"; fi; done
	OMP_NUM_THREADS=1 $(BIN)/harness search --multirun experiment=search_nb201 hydra/launcher=joblib hydra.launcher.n_jobs=$(PAPER_WORKERS) \
	  threads=1 $(PAPER_SEARCH) hydra.sweep.dir=runs/paper/search
	$(BIN)/harness search-report --records runs/paper/search --out results --name paper_nb201_search

reproduce-peers: $(STAMP)  ## the peers (AZ-NAS, VKDNW, SWAP, TE-NAS and their aggregates) beside WRCor on 1000 NB201 archs x 3 datasets x 3 seeds, published numbers beside ours -> results/ (a GPU job: ~1 min per arch and seed on one CPU core; resumable)
	$(BIN)/harness run --multirun experiment=peers_1000 hydra.sweep.dir=runs/peers
	$(BIN)/harness paper-report --records runs/peers --out results --name peers_nb201

reproduce-aggregate: $(STAMP)  ## a WRCor aggregate chosen on a calibration half of 1000 NB201 archs, judged on the held-out half beside AZ-NAS, MeCo, the votes and the published VKDNW_agg (CIFAR-10, 3 seeds; ~20 min per seed on top of reproduce-paper's stored scores, resumable) -> results/
	set -e; for seed in $(PAPER_SEEDS); do \
	  $(call sharded,experiment=aggregate_1000 seed=$$seed,runs/aggregate/shards/s$$seed); done
	$(BIN)/harness run --multirun experiment=aggregate_1000 'seed=$(shell echo $(PAPER_SEEDS) | tr ' ' ,)' hydra.sweep.dir=runs/aggregate/seeds
	$(BIN)/harness aggregate-select --records runs/aggregate/seeds --dataset cifar10 --target cifar10/test --out results --name aggregate_nb201_cifar10

SZ_N ?= 1000
reproduce-suite-zero: $(STAMP)  ## every proxy on a random 1000 (SZ_N=) of Suite-Zero's NB201 archs, 2 CPU workers (~1 h) + agreement table
	for i in 0 1; do OMP_NUM_THREADS=1 $(BIN)/harness run experiment=proxies_suite_zero archs.n=$(SZ_N) threads=1 shard=$$i/2 tracking=none hydra.run.dir=runs/proxies_suite_zero/shard$$i & done; wait
	$(BIN)/harness run experiment=proxies_suite_zero archs.n=$(SZ_N) hydra.run.dir=runs/proxies_suite_zero/latest
	$(BIN)/harness report --records runs/proxies_suite_zero/latest --out results --name proxies_suite_zero
	$(BIN)/harness agreement --records runs/proxies_suite_zero/latest --out results --name suite_zero_agreement

reproduce-cross-space: $(STAMP)  ## the cross-space table: proxies x {NB-101 292 cells, NB201 100, DARTS 725} x 3 seeds, CPU widths, 2 workers (~2 h) + Suite-Zero agreement
	for s in $(CROSS_SPACES); do \
	  for i in 0 1; do OMP_NUM_THREADS=1 $(BIN)/harness run --multirun experiment=cross_space_$$s threads=1 shard=$$i/2 tracking=none hydra.sweep.dir=runs/cross_space_$$s/shard$$i & done; wait; \
	  $(BIN)/harness run --multirun experiment=cross_space_$$s hydra.sweep.dir=runs/cross_space_$$s/latest || exit 1; \
	done
	$(BIN)/harness report --records $(foreach s,$(CROSS_SPACES),runs/cross_space_$(s)/latest) --out results --name cross_space
	$(BIN)/harness agreement --records $(foreach s,$(CROSS_SPACES),runs/cross_space_$(s)/latest) --out results --name cross_space_suite_zero

reproduce-search: $(STAMP)  ## the NB201 search table, CPU profile: R/RE/RL x {wrcor, vote_sjw, synflow, ValAcc} x N=100 x 10 seeds x 3 datasets, 2 workers (~1 h cold)
	OMP_NUM_THREADS=1 $(BIN)/harness search --multirun experiment=search_nb201_quick threads=1 dataset=cifar10,ImageNet16-120 hydra.sweep.dir=runs/search_nb201_quick/part_a & a=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/harness search --multirun experiment=search_nb201_quick threads=1 dataset=cifar100 hydra.sweep.dir=runs/search_nb201_quick/part_b & b=$$!; \
	wait $$a && wait $$b
	$(BIN)/harness search-report --records runs/search_nb201_quick --out results --name search_nb201_quick

search: $(STAMP)  ## one search: make search ARGS="search=evolution objective=vote_sjw budget=1000 seed=0"
	$(BIN)/harness search $(ARGS)

EXP    ?= nb201_quick
SHARDS ?= 4
sweep-shards: $(STAMP)  ## SHARDS local workers (joblib), one shard and store each, then merge + report: make sweep-shards EXP=nb201_quick SHARDS=4 ARGS=...
	OMP_NUM_THREADS=1 $(BIN)/harness run --multirun experiment=$(EXP) hydra/launcher=joblib hydra.launcher.n_jobs=$(SHARDS) \
	  shard=$$(seq -s, -f '%g/$(SHARDS)' 0 $$(($(SHARDS) - 1))) threads=1 tracking=none store.shards=.cache/shards/$(EXP) $(ARGS) \
	  hydra.sweep.dir=runs/$(EXP)/shards
	$(BIN)/harness run --multirun experiment=$(EXP) store.shards=.cache/shards/$(EXP) $(ARGS) hydra.sweep.dir=runs/$(EXP)/gather
	$(BIN)/harness report --records runs/$(EXP)/gather --out results --name $(EXP)

VERIFY_N ?= 500
GPU_DATA ?= $(or $(ZSNAS_DATA_DIR),../shared/data)
GPU_CHECK_ARGS ?=
#: the command a GPU machine of the device tool runs in the checkout, .gpu and .whl carried (docs/scaling.md)
GPU_COMMAND = python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:. ZSNAS_DATA_DIR=$$PWD/.gpu/data python3 -m harness gpu-check --out $$OUT
gpu-check: $(STAMP)  ## the device check of a GPU (golden scores on it, engine speed over group/workers, cudnn.deterministic, the whole NB201 space; 8 min budget) -> results/bench/gpu_check/ (GPU_CHECK_ARGS=--quick: a few archs, the CPU's check of it)
	$(BIN)/harness gpu-check --out results/bench/gpu_check $(GPU_CHECK_ARGS)

gpu-bundle: $(STAMP)  ## what a GPU machine without this venv needs beside the checkout (git-ignored): .gpu/ (NB201 table, image batches, golden scores) and .whl/ (hydra-core, omegaconf, antlr4); prints the command to run there
	rm -rf .gpu .whl && mkdir -p .gpu/data/nb201 .gpu/data/images .gpu/golden .whl
	cp $(GPU_DATA)/SHA256SUMS .gpu/data/ && cp $(GPU_DATA)/nb201/nb201_ground_truth.csv .gpu/data/nb201/ && cp $(GPU_DATA)/images/*.npz .gpu/data/images/
	cp $(GPU_DATA)/../golden/nb201_reference_* .gpu/golden/
	$(BIN)/pip wheel -q --no-deps -w .whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
	@du -sh .gpu .whl
	@echo 'on the GPU machine, in the checkout, with .gpu and .whl: $(GPU_COMMAND)'

verify-engine: $(STAMP)  ## the engine (groups of 8) vs the one-architecture path on VERIFY_N=500 random NB201 archs, 2 jobs in parallel (~15 min on 2 cores)
	for m in engine one_arch; do \
	  OMP_NUM_THREADS=1 $(BIN)/harness run archs.select=random archs.n=$(VERIFY_N) 'proxies=[wrcor,wrcor_official]' \
	    $$([ $$m = engine ] && echo engine.group=8 || echo engine.enabled=false) device=cpu threads=1 tracking=none \
	    store.path=runs/verify_engine/$$m.sqlite hydra.run.dir=runs/verify_engine/$$m & \
	done; wait
	$(BIN)/harness bench --compare runs/verify_engine/engine.sqlite runs/verify_engine/one_arch.sqlite

convert: $(STAMP)  ## convert an official benchmark file: make convert KIND=nb101 SRC=nasbench_only108.tfrecord [DATA_DIR=...]
	$(BIN)/harness convert $(KIND) $(SRC) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

verify-data: $(STAMP)  ## check every benchmark data file against its SHA256SUMS: make verify-data [DATA_DIR=...]
	$(BIN)/harness data verify $(if $(DATA_DIR),--data-dir $(DATA_DIR))

UI_PORT ?= 5000
ui: $(STAMP)  ## serve the MLflow store (mlruns.db) on 127.0.0.1:UI_PORT=5000, one worker; prints the runs table's link
	$(BIN)/harness ui --store $(CURDIR)/mlruns.db --port $(UI_PORT)

bench: $(STAMP)  ## timings: proxies / plain fwd+bwd (50 archs); cached R/RE/RL searches; WRCor naive port vs one-arch path vs engine vs plain (last line: JSON)
	$(BIN)/harness bench --archs 50

PEERS_BENCH ?= vkdnw vkdnw(jacobian=per_class) vkdnw(jacobian=per_class,precision=float64) az_expressivity+az_progressivity+az_trainability swap swap_reg ntk_cond linear_regions
bench-peers: $(STAMP)  ## seconds per architecture of each peer proxy alone, and its Kendall tau against the first (vkdnw as released): 5 NB201 archs, batch 64, ~10 min on one CPU core -> results/bench/proxies_<device>.json
	$(BIN)/harness bench --archs 0 --search-steps 0 --engine-archs 0 --each $(foreach p,$(PEERS_BENCH),'$(p)')

clean:  ## remove run outputs and caches (keeps .venv and results/)
	rm -rf runs outputs multirun .cache mlruns.db mlruns.db.lock mlartifacts

MBV2_SEEDS ?= 0,1,2
.PHONY: reproduce-mobilenetv2
reproduce-mobilenetv2: $(STAMP)  ## the WRCor ImageNet-space search, CPU profile: evolution + released SJW vote, 600M FLOPs, 3 seeds on 1 core, then the same with the transitive vote.rule=rank_sum (~15 min, cost measured anew) + the released genotypes' counts vs the official code -> results/
	rm -rf runs/search_mobilenetv2_cpu runs/search_mobilenetv2_rank_sum
	OMP_NUM_THREADS=1 $(BIN)/harness search --multirun experiment=search_mobilenetv2 'seed=$(MBV2_SEEDS)' threads=1 device=cpu \
	  store.path=runs/search_mobilenetv2_cpu/scores.sqlite hydra.sweep.dir=runs/search_mobilenetv2_cpu
	$(BIN)/harness search-report --records runs/search_mobilenetv2_cpu --out results --name search_mobilenetv2_cpu
	OMP_NUM_THREADS=1 $(BIN)/harness search --multirun experiment=search_mobilenetv2 'seed=$(MBV2_SEEDS)' vote.rule=rank_sum threads=1 \
	  device=cpu store.path=runs/search_mobilenetv2_cpu/scores.sqlite hydra.sweep.dir=runs/search_mobilenetv2_rank_sum
	$(BIN)/harness search-report --records runs/search_mobilenetv2_rank_sum --out results --name search_mobilenetv2_rank_sum
	$(BIN)/harness mobilenetv2-report --out results
