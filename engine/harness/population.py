"""The population the synthetic patients are drawn from: every prevalence in one reviewable place.

These tables are what a reviewer checks when deciding whether a cohort is "realistic". Figures are
rounded US adult figures (NHANES, MEPS, CDC surveillance, as cited in docs/harness.md) for people
who are seen in care and prescribed a muscle relaxant, with one deliberate distortion: conditions
that a rule speaks about but that are very rare (porphyria, myasthenia gravis, achalasia) are
floored at ``RARE_FLOOR`` so that 10,000 patients exercise those rules. Ids refer to the rule
pack's terminology; an id the terminology does not have is skipped, and a value set the table does
not know gets ``DEFAULT_CONDITION``.
"""

from __future__ import annotations

# Age bands used by every table: (child < 18, adult 18-64, older adult >= 65).
Prevalence = tuple[float, float, float]

AGE_MIX = (("child", 2.0, 18.0, 0.12), ("adult", 18.0, 65.0, 0.56), ("older", 65.0, 101.0, 0.32))
SEX_MIX = (("female", 0.51), ("male", 0.475), ("other", 0.005), ("unknown", 0.005), (None, 0.005))
AGE_MISSING = 0.005  # age not sent at all (exercises the missing-age rules)

RARE_FLOOR = 0.003
DEFAULT_CONDITION: Prevalence = (0.002, 0.01, 0.01)

CONDITION_PREVALENCE: dict[str, Prevalence] = {
    "seizure-disorder": (0.01, 0.012, 0.015),
    "stroke": (0.001, 0.02, 0.08),
    "psychotic-disorder": (0.002, 0.01, 0.008),
    "depression": (0.03, 0.08, 0.07),
    "heart-failure": (0.0, 0.01, 0.06),
    "arrhythmia": (0.002, 0.02, 0.09),
    "recent-myocardial-infarction": (0.0, 0.004, 0.01),
    "hyperthyroidism": (0.001, 0.01, 0.01),
    "glaucoma": (0.0, 0.01, 0.05),
    "angle-closure-glaucoma": (0.0, 0.002, 0.005),
    "myasthenia-gravis": (0.0, 0.0005, 0.0005),
    "acute-intermittent-porphyria": (0.0, 0.0001, 0.0001),
    "anemia-hemolytic-or-drug-induced": (0.002, 0.004, 0.006),
    "urinary-retention": (0.0, 0.003, 0.02),
    "gi-obstruction": (0.0, 0.002, 0.004),
    "achalasia": (0.0, 0.0001, 0.0002),
    "peptic-ulcer": (0.002, 0.02, 0.03),
    "sleep-apnea": (0.01, 0.06, 0.10),
    "copd": (0.0, 0.03, 0.10),
    "respiratory-insufficiency": (0.002, 0.005, 0.01),
    "substance-use-disorder": (0.01, 0.06, 0.02),
    "multiple-sclerosis": (0.0, 0.01, 0.005),
    "spinal-cord-injury": (0.001, 0.005, 0.005),
    "cerebral-palsy": (0.01, 0.003, 0.001),
    "parkinson-disease": (0.0, 0.001, 0.015),
    "diabetes-mellitus": (0.003, 0.09, 0.25),
    "coronary-artery-disease": (0.0, 0.03, 0.15),
    "bph-or-bladder-neck-obstruction": (0.0, 0.02, 0.12),
    "pyloroduodenal-obstruction": (0.0, 0.0001, 0.0002),
}
# Set from the patient's own state, never drawn independently (see synth.py):
# ckd (eGFR < 60), dialysis-dependence (on dialysis), liver disease, cirrhosis, hepatitis,
# pregnancy, autonomic dysreflexia (only after spinal cord injury).
DERIVED_CONDITIONS = frozenset(
    {"ckd", "dialysis-dependence", "liver-disease", "cirrhosis", "hepatitis", "pregnancy", "autonomic-dysreflexia"}
)
SEX_FACTOR: dict[str, tuple[float, float]] = {  # (female, male) multipliers
    "urinary-retention": (0.3, 1.7),
    "hyperthyroidism": (1.6, 0.4),
    "multiple-sclerosis": (1.5, 0.5),
    "bph-or-bladder-neck-obstruction": (0.0, 2.0),
}
CODED_CKD_SHARE = 0.4  # CKD is under-coded: 40% of patients with eGFR < 60 have it on the problem list
CODED_DIALYSIS_SHARE = 0.7
AUTONOMIC_DYSREFLEXIA_AFTER_SCI = 0.2
# Problem-list entries the terminology does not know (they must come back as 'unrecognized').
UNCODED_CONDITIONS: dict[str, Prevalence] = {
    "low back pain": (0.02, 0.15, 0.12),
    "hyperlipidemia": (0.005, 0.15, 0.35),
    "osteoarthritis": (0.0, 0.08, 0.30),
}

# Indications raise the chance of the matching condition when that drug is ordered.
SPASTICITY_DRUGS = frozenset({"baclofen", "tizanidine", "dantrolene", "diazepam"})
SPASTICITY_INDICATIONS: dict[str, Prevalence] = {
    "multiple-sclerosis": (0.0, 0.25, 0.10),
    "spinal-cord-injury": (0.02, 0.15, 0.08),
    "cerebral-palsy": (0.60, 0.05, 0.01),
    "stroke": (0.01, 0.10, 0.25),
}

# Co-medication groups: drug-class ids of the terminology, each drawn independently; the member
# ingredient is picked uniformly. Probabilities are "on the medication list at the time of the order".
COMED_GROUPS: dict[str, Prevalence] = {
    "antihypertensive": (0.01, 0.25, 0.65),
    "opioid": (0.01, 0.12, 0.15),
    "benzodiazepine": (0.005, 0.05, 0.08),
    "gabapentinoid": (0.005, 0.05, 0.09),
    "ssri": (0.03, 0.10, 0.08),
    "snri": (0.005, 0.03, 0.02),
    "tca": (0.002, 0.015, 0.015),
    "antipsychotic": (0.01, 0.015, 0.015),
    "antiepileptic": (0.01, 0.025, 0.025),
    "z-drug": (0.0, 0.02, 0.03),
    "sedating-antihistamine": (0.02, 0.05, 0.05),
    "alcohol": (0.0, 0.03, 0.02),
    "maoi": (0.0, 0.002, 0.005),
    "cyp1a2-inhibitor-strong": (0.002, 0.01, 0.01),
    "cyp1a2-inhibitor": (0.005, 0.04, 0.05),
    "cyp3a4-inhibitor": (0.005, 0.03, 0.04),
    "cyp2c19-inhibitor": (0.01, 0.08, 0.12),
    "triptan": (0.002, 0.02, 0.005),
    "alpha2-agonist": (0.02, 0.01, 0.01),
    "anticholinesterase": (0.0, 0.002, 0.002),
    "skeletal-muscle-relaxant": (0.005, 0.03, 0.03),
    "barbiturate": (0.002, 0.005, 0.005),
    "calcium-channel-blocker": (0.001, 0.05, 0.15),
    "ocular-hypotensive": (0.0, 0.003, 0.01),
    "carbamate": (0.0, 0.001, 0.001),
    "oral-contraceptive": (0.0, 0.0, 0.0),  # females 15-49 only: FEMALE_ONLY below
    "estrogen": (0.0, 0.0, 0.0),
}
FEMALE_ONLY: dict[str, tuple[float, float, float]] = {  # group: (min age, max age, probability)
    "oral-contraceptive": (15, 50, 0.14),
    "estrogen": (45, 101, 0.05),
}
# Umbrella classes are not drawn themselves (their members come from the specific groups above);
# a class added to the terminology later, and not listed anywhere here, gets DEFAULT_COMED_GROUP.
UMBRELLA_CLASSES = frozenset({"anticholinergic", "antidepressant", "cns-active", "cns-depressant", "serotonergic"})
DEFAULT_COMED_GROUP: Prevalence = (0.001, 0.01, 0.01)
# Treatment that follows a condition: (drug class, probability given the condition).
CONDITION_TREATMENT: dict[str, tuple[str, float]] = {
    "glaucoma": ("ocular-hypotensive", 0.7),
    "myasthenia-gravis": ("anticholinesterase", 0.6),
}
# Common medicines with no rule interest (some resolve, some come back 'unrecognized').
BACKGROUND_MEDS: dict[str, Prevalence] = {
    "atorvastatin": (0.0, 0.15, 0.40),
    "metformin": (0.002, 0.07, 0.18),
    "levothyroxine": (0.005, 0.06, 0.12),
    "ibuprofen": (0.05, 0.15, 0.10),
    "acetaminophen": (0.10, 0.20, 0.30),
    "albuterol": (0.08, 0.06, 0.06),
}

# Allergies: to the ordered drug itself, to another drug in the terminology, or to something the
# terminology does not know (penicillin, sulfa) which must come back 'unrecognized'.
ALLERGY_TO_ORDERED = 0.01
ALLERGY_TO_TERMINOLOGY_DRUG = 0.04
ALLERGY_UNKNOWN: dict[str, float] = {"penicillin": 0.08, "sulfonamide antibiotics": 0.03}

# Which of the pack's drugs is ordered (relative weights; US prescription volumes, rounded).
DRUG_WEIGHTS_ADULT: dict[str, float] = {
    "cyclobenzaprine": 30,
    "methocarbamol": 20,
    "tizanidine": 20,
    "baclofen": 12,
    "diazepam": 6,
    "carisoprodol": 3,
    "metaxalone": 3,
    "orphenadrine": 1.5,
    "dantrolene": 1,
}
DRUG_WEIGHTS_CHILD: dict[str, float] = {"baclofen": 50, "diazepam": 20, "dantrolene": 10, "tizanidine": 10}
DEFAULT_DRUG_WEIGHT = 5.0  # any other drug in the pack (children: 1.0, so "not established" is exercised)
DEFAULT_DRUG_WEIGHT_CHILD = 1.0
STOP_SHARE = 0.15  # orders that stop the drug (it is then on the medication list)
DUPLICATE_START_SHARE = 0.02  # a start for a drug already on the list
ORDERED_DOSE_SHARE = 0.2  # starts that carry the prescriber's dose (exercises the dose-range check)
ORDERED_FRACTIONS_OF_LABEL_MAX = (0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.25)

# Data that is (not) sent with the order.
P_WEIGHT = {"child": 0.92, "adult": 0.90, "older": 0.90}
P_HEIGHT = {"child": 0.85, "adult": 0.65, "older": 0.65}
# renal labs: (creatinine + eGFR, creatinine only, eGFR only, none)
RENAL_LABS = {"child": (0.05, 0.55, 0.0, 0.40), "adult": (0.45, 0.25, 0.10, 0.20), "older": (0.55, 0.25, 0.10, 0.10)}
CREATININE_IN_UMOL = 0.1  # share of creatinine values sent in umol/L (SI units)

# Hepatic class. Liver disease is drawn first; the class follows it (Child-Pugh A/B/C for cirrhosis).
LIVER_DISEASE: dict[str, Prevalence] = {"cirrhosis": (0.0, 0.01, 0.015), "hepatitis": (0.001, 0.015, 0.01)}
OTHER_LIVER_DISEASE: Prevalence = (0.001, 0.02, 0.02)
HEPATIC_CLASS_GIVEN = {
    "cirrhosis": (("mild", 0.5), ("moderate", 0.35), ("severe", 0.15)),
    "hepatitis": (("none", 0.4), ("mild", 0.45), ("moderate", 0.15)),
    "liver-disease": (("mild", 0.7), ("moderate", 0.3)),
    None: (("none", 0.84), ("unknown", 0.14), ("mild", 0.015), ("moderate", 0.005)),
}
LIVER_DISEASE_CODED = 0.7  # share of patients with liver disease who have it on the problem list

# Pregnancy (females only) by age: point prevalence about 7% at 18-34 (CDC/NCHS births x duration).
PREGNANCY_BY_AGE = ((12, 0.005), (15, 0.02), (18, 0.06), (25, 0.08), (35, 0.04), (45, 0.005), (51, 0.0))
PREGNANCY_STATUS_RECORDED = 0.9  # a pregnant patient's status is sent as true (else unknown)
NOT_PREGNANT_RECORDED_FALSE = 0.55  # women 12-55 not pregnant: status false, else unknown
PREGNANCY_CONDITION_CODED = 0.5
BREASTFEEDING_18_45 = 0.04
BREASTFEEDING_RECORDED_FALSE = 0.5
