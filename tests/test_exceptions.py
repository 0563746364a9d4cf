"""The warning and error classes: each is the builtin (or sunpy) class it stands for, so that callers catching
that class still catch this package's."""

import builtins
import inspect
import warnings

import pytest
from sunpy.util.exceptions import SunpyUserWarning

from enhance import exceptions
from enhance.exceptions import EnhanceUserWarning, ModelNotTrainedError, NoiseLevelWarning

PUBLIC = [getattr(exceptions, name) for name in exceptions.__all__]
BUILTIN_ERRORS = {c for c in vars(builtins).values() if inspect.isclass(c) and issubclass(c, BaseException)}


def test_every_public_name_is_a_warning_or_error_class():
    assert PUBLIC
    assert all(inspect.isclass(c) and issubclass(c, Exception) for c in PUBLIC)


@pytest.mark.parametrize("cls", PUBLIC, ids=[c.__name__ for c in PUBLIC])
def test_each_class_stands_for_a_specific_builtin(cls):
    """Every warning is one of sunpy's (so a filter on sunpy's warnings covers it); every error derives from a
    builtin more specific than Exception (so ``except LookupError`` and the like keep working)."""
    if issubclass(cls, Warning):
        assert issubclass(cls, EnhanceUserWarning)
        assert issubclass(cls, SunpyUserWarning)
        assert issubclass(cls, UserWarning)
    else:
        specific = [b for b in cls.__mro__ if b in BUILTIN_ERRORS and b not in (Exception, BaseException, object)]
        assert specific, f"{cls.__name__} derives from no builtin error more specific than Exception"


def test_a_filter_on_sunpys_warnings_turns_ours_into_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyUserWarning)
        with pytest.raises(NoiseLevelWarning, match="far from HMI's"):
            warnings.warn("noise far from HMI's", NoiseLevelWarning, stacklevel=1)


def test_ignoring_our_warnings_leaves_other_user_warnings_alone():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=EnhanceUserWarning)
        warnings.warn("ours", NoiseLevelWarning, stacklevel=1)
        warnings.warn("someone else's", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["someone else's"]


def test_model_not_trained_is_caught_as_a_lookup_error_and_prints_its_message_plainly():
    msg = "no trained weights for blos/full"
    with pytest.raises(LookupError) as info:
        raise ModelNotTrainedError(msg)
    assert str(info.value) == "no trained weights for blos/full"  # not KeyError's quoted repr
    assert not issubclass(ModelNotTrainedError, KeyError)
