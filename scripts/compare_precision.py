"""Out-of-fold AUC of one demo run, graded in fp32 and in bf16 (GLIOGRADE_PRECISION)."""
import csv, json, os, shutil, sys
from pathlib import Path
from gliograde.assess.crossval import evaluate_cross_validation
src = Path(sys.argv[1])
for prec in ("fp32", "bf16"):
    dst = Path(f"/tmp/demo-prec-{prec}")
    shutil.rmtree(dst, ignore_errors=True); shutil.copytree(src, dst)
    os.environ["GLIOGRADE_PRECISION"] = prec
    m = evaluate_cross_validation(dst)
    print(prec, "patient AUC", round(m["patient"]["auc"], 4), "no seg", round(m["patient_noseg"]["auc"], 4))
def read(p): return {r['subject']: r for r in csv.DictReader(open(p))}
a, b = read('/tmp/demo-prec-fp32/predictions_patients.csv'), read('/tmp/demo-prec-bf16/predictions_patients.csv')
for col in ['p_hgg_uncalibrated', 'p_hgg_noseg_uncalibrated']:
    d = [abs(float(a[s][col]) - float(b[s][col])) for s in a]
    print(col, "max |fp32 - bf16|", round(max(d), 4), "mean", round(sum(d) / len(d), 4))
