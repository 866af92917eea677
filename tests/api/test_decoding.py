"""The API's pixel budget for concurrent decodes (tests/api/test_decode_budget.py runs it over HTTP)."""

from api.decoding import PixelBudget


def test_the_decode_budget_lets_pictures_through_while_their_pixels_fit():
    budget = PixelBudget(100)
    first = budget.take(60)
    assert first == 60 and budget.take(60) is None  # would hold 120 pixels at once
    budget.give_back(first)
    assert budget.take(60) == 60


def test_a_picture_larger_than_the_whole_budget_decodes_alone():
    budget = PixelBudget(100)
    assert budget.take(1000) == 100 and budget.take(1) is None
