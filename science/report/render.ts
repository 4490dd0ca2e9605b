/**
 * Chart rendering without a browser: Vega-Lite spec -> Vega -> SVG string (headless vega View), SVG -> PNG (resvg).
 * Deterministic: text is measured with DejaVu Sans's advance widths (not a machine's canvas), SVG ids restart for every
 * chart, and the PNG renderer loads DejaVu Sans from fixed files (the system's fonts only where they are missing).
 */
import { existsSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import { dejaVuTextWidth } from "./dejavu-widths.ts";

/** Where Debian/Ubuntu install DejaVu (package fonts-dejavu-core); the charts name DejaVu Sans first. */
export const DEJAVU_DIR = "/usr/share/fonts/truetype/dejavu";
const DEJAVU_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"].map((f) => `${DEJAVU_DIR}/${f}`);

/** The parts of a vega text item that its width depends on. */
interface TextItem {
  readonly fontSize?: number | string;
  readonly fontWeight?: number | string;
  readonly limit?: number;
}

/**
 * Vega measures text for layout with a canvas when it has one and otherwise guesses 0.8 em per character, which
 * pads every chart with wide margins. Headless, measure with DejaVu Sans's real advance widths instead (what the
 * PNG renderer draws with); a label vega truncates to `limit` is at most that wide.
 */
const textMetrics = (
  vega as unknown as { textMetrics: { width: (item: TextItem, text: string | number | null | undefined) => number } }
).textMetrics;
textMetrics.width = (item, text) => {
  const fontSize = item.fontSize == null ? 11 : Number(item.fontSize) || 0;
  const bold = item.fontWeight === "bold" || Number(item.fontWeight) >= 600;
  const width = dejaVuTextWidth(text == null ? "" : String(text).trim(), fontSize, bold);
  return item.limit !== undefined && item.limit > 0 ? Math.min(width, item.limit) : width;
};

/** Renders a Vega-Lite spec to a standalone SVG document. */
export const renderSvg = async (spec: TopLevelSpec): Promise<string> => {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Warn });
  try {
    // Clip-path and gradient ids come from module-wide counters: restart them so a chart's bytes do not depend
    // on what was rendered before it in the process.
    vega.resetSVGDefIds();
    return await view.toSVG();
  } finally {
    view.finalize();
  }
};

/** Rasterises an SVG to PNG at `scale` times its size (2: sharp on high-density screens). */
export const svgToPng = (svg: string, scale = 2): Buffer => {
  const dejavu = DEJAVU_FILES.every((f) => existsSync(f));
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: {
      loadSystemFonts: !dejavu,
      ...(dejavu ? { fontFiles: DEJAVU_FILES } : {}),
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
  });
  return resvg.render().asPng();
};

/**
 * Makes the ids of an SVG unique within a page that inlines several charts: every `id="X"` and its `url(#X)` /
 * `href="#X"` references get `prefix-` in front (vega numbers clip paths and gradients from 1 in every chart).
 */
export const prefixSvgIds = (svg: string, prefix: string): string => {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!));
  if (ids.size === 0) return svg;
  const escaped = [...ids].map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  return svg
    .replace(new RegExp(`(\\sid=")(${escaped})"`, "g"), `$1${prefix}-$2"`)
    .replace(new RegExp(`url\\(#(${escaped})\\)`, "g"), `url(#${prefix}-$1)`)
    .replace(new RegExp(`(href=")#(${escaped})"`, "g"), `$1#${prefix}-$2"`);
};
