/*
 * h2o_includes.h
 *      Debian's libh2o-evloop.pc does not say which event loop the library
 *      was built for; the headers default to libuv.  Every file includes h2o
 *      through here so the choice is made once.
 */
#ifndef COMMERCE_HTTP_H2O_INCLUDES_H
#define COMMERCE_HTTP_H2O_INCLUDES_H

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>

#endif
