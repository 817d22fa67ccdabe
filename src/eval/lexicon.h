/*
 * lexicon.h — internal parts of the emotion lexicon scorer (public API in emosteer.h,
 * "Emotion lexicon scorer").
 *
 * Files (loaded from a directory the caller names; the project ships data/lexicon/):
 *   emotions.tsv       word<TAB>emotion<TAB>weight per line; '#' starts a comment line;
 *                      word: lowercase letters and apostrophes; emotion: anger, disgust,
 *                      fear, joy, sadness; weight in (0, 10]. A word may have several
 *                      lines (one per emotion); a repeated (word, emotion) is an error.
 *   vader_lexicon.txt  the VADER lexicon (Hutto & Gilbert 2014, Apache-2.0):
 *                      token<TAB>mean valence in [-4, 4]<TAB>sd<TAB>ratings.
 *
 * Words of a text: maximal runs of letters (ASCII letters, any byte >= 0x80),
 * apostrophes inside a word (' or U+2019, read as '), and digits; everything else
 * separates words. Matching is on the ASCII-lowercased word.
 *
 * Emotion counting: a word in emotions.tsv adds its weight to each of its emotions,
 * unless a negator (not, no, never, none, nobody, nothing, neither, nor, without,
 * hardly, barely, cannot, or a word ending in n't / "dont"-style contractions) is among
 * the 3 words before it: then it is cancelled (counted in n_negated).
 *
 * Valence (VADER-style compound, our own implementation of the published rules):
 * each lexicon word's mean valence, plus a booster/dampener word among the 3 before
 * it (+-0.293, scaled 1, 0.95, 0.9 by distance), plus 0.733 for an ALL-CAPS word in
 * mixed-case text, times -0.74 when a negator is among the 3 words before; words
 * before "but" count x0.5 and after it x1.5; the sum s gets +0.292 per '!' (up to 4)
 * and for more than one '?' +0.18 each (0.96 beyond 3), in the direction of s; the
 * compound is s / sqrt(s^2 + 15), clamped to [-1, 1].
 */
#ifndef ES_LEXICON_H
#define ES_LEXICON_H

#include "common.h"

/* Loads the lexicon from two in-memory files (NUL-termination not required). Used by
 * es_lexicon_load and by tests. *out is owned by the caller. */
es_status es_lexicon_load_memory(const char *emotions_tsv, size_t emotions_len,
                                 const char *vader_txt, size_t vader_len, es_lexicon **out);

/* Number of distinct words with an emotion weight / a valence (for reports). */
int es_lexicon_n_emotion_words(const es_lexicon *lex);
int es_lexicon_n_valence_words(const es_lexicon *lex);

#endif /* ES_LEXICON_H */
