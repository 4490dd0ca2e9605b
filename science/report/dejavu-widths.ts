/**
 * Advance widths of DejaVu Sans and DejaVu Sans Bold (in em) for printable ASCII and the few symbols the report
 * uses, read once from the fonts' hmtx tables (DejaVu fonts 2.37). Vega lays out titles, axes and legends with text
 * widths; without a canvas it guesses 0.8 em per character, which leaves wide empty margins. These tables make the
 * layout match what the PNG renderer draws, and keep it the same on every machine.
 */

/** The characters the width tables cover, in order. */
const CHARACTERS =
  " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~±εσ²≤≥×–−·…∈√ℓ";

const REGULAR = [
  0.3179, 0.4009, 0.46, 0.8379, 0.6362, 0.9502, 0.7798, 0.2749, 0.3901, 0.3901, 0.5, 0.8379, 0.3179, 0.3608, 0.3179,
  0.3369, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.3369, 0.3369, 0.8379,
  0.8379, 0.8379, 0.5308, 1, 0.6841, 0.686, 0.6982, 0.77, 0.6318, 0.5752, 0.7749, 0.752, 0.2949, 0.2949, 0.6558, 0.5571,
  0.8628, 0.748, 0.7871, 0.603, 0.7871, 0.6948, 0.6348, 0.6108, 0.7319, 0.6841, 0.9888, 0.6851, 0.6108, 0.6851, 0.3901,
  0.3369, 0.3901, 0.8379, 0.5, 0.5, 0.6128, 0.6348, 0.5498, 0.6348, 0.6152, 0.3521, 0.6348, 0.6338, 0.2778, 0.2778,
  0.5791, 0.2778, 0.9741, 0.6338, 0.6118, 0.6348, 0.6348, 0.4111, 0.521, 0.3921, 0.6338, 0.5918, 0.8179, 0.5918, 0.5918,
  0.5249, 0.6362, 0.3369, 0.6362, 0.8379, 0.8379, 0.5405, 0.6338, 0.4009, 0.8379, 0.8379, 0.8379, 0.5, 0.8379, 0.3179,
  1, 0.8711, 0.6372, 0.4131,
];

const BOLD = [
  0.3481, 0.4561, 0.521, 0.8379, 0.6958, 1.002, 0.8721, 0.3062, 0.457, 0.457, 0.5229, 0.8379, 0.3799, 0.415, 0.3799,
  0.3652, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.3999, 0.3999, 0.8379,
  0.8379, 0.8379, 0.5801, 1, 0.7739, 0.7622, 0.7339, 0.8301, 0.6831, 0.6831, 0.8208, 0.8369, 0.3721, 0.3721, 0.7749,
  0.6372, 0.9951, 0.8369, 0.8501, 0.7329, 0.8501, 0.77, 0.7202, 0.6821, 0.812, 0.7739, 1.103, 0.771, 0.7241, 0.7251,
  0.457, 0.3652, 0.457, 0.8379, 0.5, 0.5, 0.6748, 0.7158, 0.5928, 0.7158, 0.6782, 0.4351, 0.7158, 0.7119, 0.3428,
  0.3428, 0.665, 0.3428, 1.042, 0.7119, 0.687, 0.7158, 0.7158, 0.4932, 0.5952, 0.478, 0.7119, 0.6519, 0.9238, 0.645,
  0.6519, 0.582, 0.7119, 0.3652, 0.7119, 0.8379, 0.8379, 0.5566, 0.7788, 0.438, 0.8379, 0.8379, 0.8379, 0.5, 0.8379,
  0.3799, 1, 0.8965, 0.667, 0.4717,
];

/** Width of an uncovered character: about that of a lower-case letter. */
const FALLBACK_EM = 0.62;

const table = (widths: readonly number[]) => new Map([...CHARACTERS].map((c, i) => [c, widths[i]!]));
const REGULAR_WIDTHS = table(REGULAR);
const BOLD_WIDTHS = table(BOLD);

/** Width in pixels of `text` set in DejaVu Sans (bold or not) at `fontSize` pixels. */
export const dejaVuTextWidth = (text: string, fontSize: number, bold: boolean): number => {
  const widths = bold ? BOLD_WIDTHS : REGULAR_WIDTHS;
  let em = 0;
  for (const c of text) em += widths.get(c) ?? FALLBACK_EM;
  return em * fontSize;
};
