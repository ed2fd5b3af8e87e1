#!/usr/bin/env bash
# Mutation testing of the estimators: not part of CI (hours on a small machine).
#
#   tools/mutation.sh python [FILE...]   mutmut 2 on the Python estimators (default:
#                                        quantile proportions association contrast)
#   tools/mutation.sh rust               cargo mutants on src/estimate.rs, src/variance.rs
#
# Both work on a scratch copy of the tree (MUTATION_DIR, default /tmp/sscoverage-mutation),
# so the checkout is never left mutated when a run is stopped.  Environment:
#   MUTATION_TIMEOUT  seconds per Python file or for the Rust run (default 1800)
#   RUST_RE           --re filter for cargo mutants (default: every function of the files)
#   MUTMUT_PATCH      a patch file: mutmut mutates only the lines it adds (needs whatthepatch)
# Results: $MUTATION_DIR/out/*.txt (surviving mutants: "mutmut show ID" in the copy;
# cargo mutants' mutants.out/missed.txt).  The survivors and why each is harmless, or
# the test that now kills it, are listed in tests/MUTATION.md.
#
# Needs: a built checkout (pip install -e ".[test]"), `pip install "mutmut<3"`,
# `cargo install cargo-mutants`; runs under nice -n 10.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${MUTATION_DIR:-/tmp/sscoverage-mutation}
timeout_s=${MUTATION_TIMEOUT:-1800}
mode=${1:-python}
shift || true

copy_tree() {
    rm -rf "$work/ws"
    mkdir -p "$work/ws" "$work/out"
    # The reference cases sit at ../shared beside the tree, as in a checkout.
    ln -sfn "$(cd "$root/.." && pwd)/shared" "$work/shared"
    (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$work/ws")
    cp "$root"/python/sscoverage/_core*.so "$work/ws/python/sscoverage/"
}

# The tests that exercise each file, kept fast enough to run once per mutant.
python_tests() {
    case "$1" in
        quantile) echo "tests/test_quantile.py tests/test_reference.py tests/test_r_checks.py -k 'quantile and not bootstrap and not brr and not pps'" ;;
        proportions) echo "tests/test_proportions.py tests/test_reference.py tests/test_r_checks.py -k 'ciprop or wilson or proportions'" ;;
        association) echo "tests/test_association.py tests/test_reference.py -k 'association or chisq'" ;;
        contrast) echo "tests/test_contrast.py tests/test_reference.py -k 'contrast'" ;;
        *) echo "no test selection for $1" >&2; exit 2 ;;
    esac
}

run_python() {
    copy_tree
    cd "$work/ws"
    # The copy's package (with the built core) comes before the editable install.
    export PYTHONPATH="$work/ws/python"
    local files=("$@")
    [ ${#files[@]} -eq 0 ] && files=(quantile proportions association contrast)
    for name in "${files[@]}"; do
        rm -f .mutmut-cache
        local runner="python -m pytest -x -q -p no:cacheprovider $(python_tests "$name")"
        echo "== mutmut on python/sscoverage/$name.py: $runner"
        local patch=()
        [ -n "${MUTMUT_PATCH:-}" ] && patch=(--use-patch-file "$MUTMUT_PATCH")
        timeout "$timeout_s" nice -n 10 mutmut run --paths-to-mutate "python/sscoverage/$name.py" \
            --runner "$runner" --no-progress --simple-output "${patch[@]}" || true
        mutmut results > "$work/out/python-$name.txt" 2>&1 || true
        mv .mutmut-cache "$work/out/python-$name.mutmut-cache"
        # A stopped run may leave its last mutant in place: the copy is thrown away.
        git -C "$root" show "HEAD:python/sscoverage/$name.py" > "python/sscoverage/$name.py"
    done
}

run_rust() {
    copy_tree
    cd "$work/ws"
    local re=()
    [ -n "${RUST_RE:-}" ] && re=(--re "$RUST_RE")
    timeout "$timeout_s" nice -n 10 cargo mutants --file src/estimate.rs --file src/variance.rs "${re[@]}" \
        --timeout 300 --jobs 1 --output "$work/out" || true
}

case "$mode" in
    python) run_python "$@" ;;
    rust) run_rust ;;
    *) echo "usage: tools/mutation.sh python [FILE...] | rust" >&2; exit 2 ;;
esac
