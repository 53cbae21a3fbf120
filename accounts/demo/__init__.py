"""A synthetic coordinated campaign, written in Instaloader's on-disk format.

It re-creates the kind of operation the 2019 Ghost Data study of Instagram
describes: a large organic background (with genuinely viral images re-shared by
unrelated accounts), 350 suspicious accounts, and 19 coordinated core accounts in
four groups with look-alike handles that post the same meme images, identical or
altered, mostly minutes apart and sometimes weeks apart; one block of five
accounts created on the same day that all fall silent at the end of that month;
profile photos reused across accounts (one of them "stolen" from a known source);
the hashtags #hatetrump, #ihatetrump and #impeachtrump; and interactions that
grow exponentially over the months.

Everything is derived from the seed: the same seed and scale give byte-identical
files. ``ground_truth.json`` lists what was planted, for tests and benchmarks.
"""

from accounts.demo.generator import DemoSpec, generate_demo

__all__ = ["DemoSpec", "generate_demo"]
