"""The Django admin: where editors start and stop A/B experiments."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone

from movie.experiments.arms import arms_validate
from movie.experiments.models import Experiment


class ExperimentForm(forms.ModelForm):
    """Arms checked with the messages of `arms.arms_validate`. The arms of an experiment
    that has started are fixed: changing them would move visitors between arms mid-way and
    mix two splits in one CTR. Stop it and start a new one instead."""

    class Meta:
        model = Experiment
        fields = ["name", "arms", "started_at", "stopped_at"]
        help_texts = {
            "arms": 'A list of arms, e.g. [{"model": "lightgcn", "weight": 1}, '
                    '{"model": "ngcf", "weight": 1}]. '
                    "A visitor lands in an arm with probability weight / total weight.",
            "stopped_at": "Empty: runs until stopped. While several run, "
                          "the newest started assigns visitors.",
        }

    def clean_arms(self):
        arms = self.cleaned_data["arms"]
        arms_validate(arms)
        started = self.instance.pk is not None and self.instance.started_at <= timezone.now()
        if started and arms != self.instance.arms:
            raise ValidationError("This experiment has started: its arms cannot change. "
                                  "Stop it and start a new experiment with the new arms.")
        return arms

    def clean(self):
        cleaned = super().clean()
        started, stopped = cleaned.get("started_at"), cleaned.get("stopped_at")
        if started and stopped and stopped <= started:
            self.add_error("stopped_at", "The experiment must stop after it starts.")
        return cleaned


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    list_display = ["name", "started_at", "stopped_at"]
    search_fields = ["name"]
