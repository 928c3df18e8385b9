from django.core.management.base import BaseCommand, CommandError

from movie.experiments.selectors import EXPERIMENT_PAGE, arm_ctr, experiment_get, experiment_names
from movie.experiments.statistics import SIGNIFICANCE, arm_comparisons


class Command(BaseCommand):
    help = (
        "An A/B experiment's result without the dashboard: per arm the impressions of the home row, "
        "the impressions clicked, CTR with its 95% Wilson interval, and a two-proportion z-test "
        "of the best arm against each other arm."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the experiment's name, as in the admin")

    def handle(self, *args, name, **options):
        experiment = experiment_get(name)
        if experiment is None:
            known = ", ".join(experiment_names()) or "none yet (create one in the admin)"
            raise CommandError(f"No experiment named {name!r}. Experiments: {known}.")
        until = experiment.stopped_at.isoformat() if experiment.stopped_at else "now"
        self.stdout.write(f"Experiment {experiment.name}: {experiment.started_at.isoformat()} to {until}, "
                          f"lists on page {EXPERIMENT_PAGE!r}")
        rows = arm_ctr(experiment)
        self.stdout.write(f"{'arm':<10} {'impressions':>11} {'clicks':>7} {'CTR':>7}  95% interval")
        for row in rows:
            self.stdout.write(f"{row.model:<10} {row.impressions:>11} {row.clicks:>7} {row.ctr:>7.2%}  "
                              f"[{row.low:.2%}, {row.high:.2%}]")
        comparisons = arm_comparisons(rows)
        if comparisons:
            self.stdout.write(f"Best arm: {comparisons[0].best} (highest CTR)")
        for c in comparisons:
            if c.p is None:
                self.stdout.write(f"{c.model} vs {c.best}: no test yet, an arm has no impressions")
                continue
            verdict = "significant" if c.significant else "not significant"
            self.stdout.write(f"{c.model} vs {c.best}: z = {c.z:.2f}, p = {c.p:.4f}, "
                              f"{verdict} at {SIGNIFICANCE}")
