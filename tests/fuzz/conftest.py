import os

from hypothesis import Phase, settings

# LASTGOOD_FUZZ_QUICK=1 reports the first failure without shrinking it (shrinking a CLI run takes minutes)
settings.register_profile("quick", phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True)
if os.environ.get("LASTGOOD_FUZZ_QUICK"):
    settings.load_profile("quick")
