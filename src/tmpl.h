/* Pages are files under assets/ filled from JSON data. A small subset of
 * Mustache: {{name}} (HTML-escaped), {{{name}}} (raw), {{a.b}} (dotted),
 * {{#name}}...{{/name}} (each element of an array, or once when truthy;
 * inside, names resolve in the element first, then outward),
 * {{^name}}...{{/name}} (when falsy or empty), {{.}} (the current value). */
#ifndef CONCH_TMPL_H
#define CONCH_TMPL_H

#include <jansson.h>

/* Sets the directory templates load from (conf.assets_dir). */
void tmpl_init(const char *dir);
/* Renders a template text; returns malloc'd HTML, or NULL on a syntax error. */
char *tmpl_render(const char *text, json_t *data);
/* Loads (and caches) assets/<name> and renders it; NULL when missing. */
char *tmpl_render_file(const char *name, json_t *data);

#endif
