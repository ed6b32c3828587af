# shellcheck shell=bash
# Shared by the launch scripts: checks the environment variables and calls the entry points.
# Every extra argument of a script is forwarded as a hydra override (solo-learn's key names).
# Values are single-quoted for hydra, since solo-learn checkpoint names contain '=' (ep=9).

SEED_SOLO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The python: $PYTHON if set; else that of the environment `make setup` installs into (the
# active virtualenv or conda env, else .venv here: scripts/env.sh) once it exists; else python.
# shellcheck source=scripts/env.sh
source "$SEED_SOLO_ROOT/scripts/env.sh"
if [ -z "${PYTHON:-}" ]; then
    PYTHON="$(seed_solo_env_python "$SEED_SOLO_ROOT")"
    [ -x "$PYTHON" ] || PYTHON=python
fi

require() { # NAME HELP
    if [ -z "${!1:-}" ]; then
        echo "error: $1 is not set. $2" >&2
        exit 2
    fi
}

data_paths() { # DATASET -> sets DATA_OVERRIDES, the hydra overrides for the data folders
    require DATA_DIR "Set DATA_DIR to the data set folder (with train/ and val/ inside; for CIFAR, the torchvision download folder)."
    if [ ! -d "$DATA_DIR" ]; then
        echo "error: DATA_DIR=$DATA_DIR is not a folder." >&2
        exit 2
    fi
    case "$1" in
        cifar) DATA_OVERRIDES=("data.train_path='$DATA_DIR'" "data.val_path='$DATA_DIR'") ;;
        *) DATA_OVERRIDES=("data.train_path='$DATA_DIR/train'" "data.val_path='$DATA_DIR/val'") ;;
    esac
}

hydra_command() { # ENTRY(distill|linear|cache|finetune) DATASET CONFIG OVERRIDE [overrides...] -> sets COMMAND
    local entry="$1" dataset="$2" config="$3" override="$4"; shift 4
    local configs="$entry"
    [ "$entry" = cache ] && configs=distill  # the cache pass reads the distill run's config
    data_paths "$dataset"
    COMMAND=("$PYTHON" -m "seed_solo.$entry" --config-path "$SEED_SOLO_ROOT/configs/$configs/$dataset"
        --config-name "$config" "${DATA_OVERRIDES[@]}" "$override" "$@")
}

run_hydra() { hydra_command "$@"; exec "${COMMAND[@]}"; }

# With a teacher cache, images are read by solo-learn's torchvision pipeline (DALI's cannot be
# replayed): the cache pass and the cached distillation both switch data.format, identically.
CACHE_FORMAT="data.format=image_folder"

distill_command() { # DATASET CONFIG [overrides...] -> sets COMMAND (for a launcher: srun, ...)
    # TEACHER_CACHE=PATH: train from a teacher cache
    require TEACHER "Set TEACHER to a zoo name (seed-solo zoo list), a URL, or a checkpoint path."
    if [ -n "${TEACHER_CACHE:-}" ]; then
        hydra_command distill "$1" "$2" "method_kwargs.teacher='$TEACHER'" "$CACHE_FORMAT" \
            "+method_kwargs.teacher_cache='$TEACHER_CACHE'" "${@:3}"
    else
        hydra_command distill "$1" "$2" "method_kwargs.teacher='$TEACHER'" "${@:3}"
    fi
}

seed_solo_distill() { distill_command "$@"; exec "${COMMAND[@]}"; }

seed_solo_cache() { # DATASET CONFIG [overrides...]: the cache pass of that distill config
    require TEACHER "Set TEACHER to a zoo name (seed-solo zoo list), a URL, or a checkpoint path."
    require TEACHER_CACHE "Set TEACHER_CACHE to the folder the cache is written to (then give the same TEACHER_CACHE to the distill script)."
    run_hydra cache "$1" "$2" "method_kwargs.teacher='$TEACHER'" "$CACHE_FORMAT" \
        "+cache.path='$TEACHER_CACHE'" "+cache.views=${VIEWS:-8}" "${@:3}"
}

seed_solo_linear() { # DATASET CONFIG [overrides...]
    require CKPT "Set CKPT to the student's run folder (trained_models/seed/<run>: its last checkpoint is taken) or a .ckpt file."
    run_hydra linear "$1" "$2" "pretrained_feature_extractor='$CKPT'" "${@:3}"
}

seed_solo_finetune() { # DATASET CONFIG FRACTION [overrides...]: SUBSET=FILE, else FRACTION of each class
    require CKPT "Set CKPT to the student's run folder (trained_models/seed/<run>: its last checkpoint is taken) or a .ckpt file."
    local subset="subset.fraction=$3"
    if [ -n "${SUBSET:-}" ]; then
        [ -f "$SUBSET" ] || { echo "error: SUBSET=$SUBSET is not a file (SimCLR's imagenet_subsets/1percent.txt or 10percent.txt)." >&2; exit 2; }
        subset="subset.file='$SUBSET'"
    else
        echo "seed-solo: SUBSET is not set: fine-tuning on a seeded, class-balanced $3 of each class, not SimCLR's list (docs/evaluation.md)." >&2
    fi
    run_hydra finetune "$1" "$2" "pretrained_feature_extractor='$CKPT'" "$subset" "${@:4}"
}

seed_solo_knn() { # DATASET_FLAG [options...]
    local dataset="$1"; shift
    require RUN_DIR "Set RUN_DIR to the student's run folder (trained_models/seed/<run>, holding args.json and the .ckpt)."
    require DATA_DIR "Set DATA_DIR to the data set folder (with train/ and val/ inside)."
    local train="$DATA_DIR/train" val="$DATA_DIR/val"
    if [ "$dataset" = cifar10 ] || [ "$dataset" = cifar100 ]; then train="$DATA_DIR"; val="$DATA_DIR"; fi
    exec "$PYTHON" -m seed_solo.knn --pretrained_checkpoint_dir "$RUN_DIR" --dataset "$dataset" \
        --train_data_path "$train" --val_data_path "$val" "$@"
}
