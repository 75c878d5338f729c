/*
** $Id: lstring.c,v 2.8.1.1 2007/12/27 13:02:25 roberto Exp $
** String table (keeps all strings handled by Lua)
** See Copyright Notice in lua.h
*/


#include <stdint.h>
#include <string.h>

#define lstring_c
#define LUA_CORE

#include "lua.h"

#include "lmem.h"
#include "lobject.h"
#include "lstate.h"
#include "lstring.h"



void luaS_resize (lua_State *L, int newsize) {
  GCObject **newhash;
  stringtable *tb;
  int i;
  if (G(L)->gcstate == GCSsweepstring)
    return;  /* cannot resize during GC traverse */
  newhash = luaM_newvector(L, newsize, GCObject *);
  tb = &G(L)->strt;
  for (i=0; i<newsize; i++) newhash[i] = NULL;
  /* rehash */
  for (i=0; i<tb->size; i++) {
    GCObject *p = tb->hash[i];
    while (p) {  /* for each node in the list */
      GCObject *next = p->gch.next;  /* save next */
      unsigned int h = gco2ts(p)->hash;
      int h1 = lmod(h, newsize);  /* new position */
      lua_assert(cast_int(h%newsize) == lmod(h, newsize));
      p->gch.next = newhash[h1];  /* chain it */
      newhash[h1] = p;
      p = next;
    }
  }
  luaM_freearray(L, tb->hash, tb->size, TString *);
  tb->size = newsize;
  tb->hash = newhash;
}


static TString *newlstr (lua_State *L, const char *str, size_t l,
                                       unsigned int h) {
  TString *ts;
  stringtable *tb;
  if (l+1 > (MAX_SIZET - sizeof(TString))/sizeof(char))
    luaM_toobig(L);
  ts = cast(TString *, luaM_malloc(L, (l+1)*sizeof(char)+sizeof(TString)));
  ts->tsv.len = l;
  ts->tsv.hash = h;
  ts->tsv.marked = luaC_white(G(L));
  ts->tsv.tt = LUA_TSTRING;
  ts->tsv.reserved = 0;
  memcpy(ts+1, str, l*sizeof(char));
  ((char *)(ts+1))[l] = '\0';  /* ending 0 */
  tb = &G(L)->strt;
  h = lmod(h, tb->size);
  ts->tsv.next = tb->hash[h];  /* chain new entry */
  tb->hash[h] = obj2gco(ts);
  tb->nuse++;
  if (tb->nuse > cast(lu_int32, tb->size) && tb->size <= MAX_INT/2)
    luaS_resize(L, tb->size*2);  /* too crowded */
  return ts;
}


/*
** ferrokv: the hash of strings of 32 bytes or more. Stock 5.1 samples
** only every (l>>5)+1-th byte of those, so strings that differ elsewhere
** all collide and interning them (script arguments, for one) takes
** quadratic time. This reads every byte, 8 at a time in four independent
** lanes (xxHash64's round) so it costs about what copying the string
** does, and starts from a per-state random seed, so colliding strings
** cannot be computed ahead. Shorter strings hash as in stock Lua (the
** order `next` visits their keys in stays Redis's).
*/
#define HPRIME1 0x9E3779B185EBCA87ULL
#define HPRIME2 0xC2B2AE3D27D4EB4FULL
#define HPRIME3 0x165667B19E3779F9ULL
#define rotl64(x,r) (((x) << (r)) | ((x) >> (64 - (r))))

static uint64_t read64 (const char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof(w));
  return w;
}

static uint64_t hround (uint64_t acc, uint64_t w) {
  acc += w * HPRIME2;
  acc = rotl64(acc, 31);
  return acc * HPRIME1;
}

static unsigned int hashlong (uint64_t seed, const char *str, size_t l) {
  uint64_t a = seed + HPRIME1 + HPRIME2, b = seed + HPRIME2;
  uint64_t c = seed, d = seed - HPRIME1;
  uint64_t h, w;
  const char *p = str, *end = str + l;
  for (; end - p >= 32; p += 32) {
    a = hround(a, read64(p));
    b = hround(b, read64(p + 8));
    c = hround(c, read64(p + 16));
    d = hround(d, read64(p + 24));
  }
  h = rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18) + l;
  for (; p < end; p += 8) {
    w = 0;
    memcpy(&w, p, (size_t)(end - p) < 8 ? (size_t)(end - p) : 8);
    h ^= hround(0, w);
    h = rotl64(h, 27) * HPRIME1 + HPRIME3;
  }
  h ^= h >> 33;
  h *= HPRIME2;
  h ^= h >> 29;
  h *= HPRIME3;
  h ^= h >> 32;
  return cast(unsigned int, h);
}


TString *luaS_newlstr (lua_State *L, const char *str, size_t l) {
  GCObject *o;
  unsigned int h = cast(unsigned int, l);  /* seed */
  size_t l1;
  if (l >= 32)  /* ferrokv: see hashlong */
    h = hashlong(G(L)->strhashseed, str, l);
  else  /* stock 5.1 reads every byte of these too */
    for (l1=l; l1>=1; l1--)  /* compute hash */
      h = h ^ ((h<<5)+(h>>2)+cast(unsigned char, str[l1-1]));
  for (o = G(L)->strt.hash[lmod(h, G(L)->strt.size)];
       o != NULL;
       o = o->gch.next) {
    TString *ts = rawgco2ts(o);
    if (ts->tsv.len == l && (memcmp(str, getstr(ts), l) == 0)) {
      /* string may be dead */
      if (isdead(G(L), o)) changewhite(o);
      return ts;
    }
  }
  return newlstr(L, str, l, h);  /* not found */
}


Udata *luaS_newudata (lua_State *L, size_t s, Table *e) {
  Udata *u;
  if (s > MAX_SIZET - sizeof(Udata))
    luaM_toobig(L);
  u = cast(Udata *, luaM_malloc(L, s + sizeof(Udata)));
  u->uv.marked = luaC_white(G(L));  /* is not finalized */
  u->uv.tt = LUA_TUSERDATA;
  u->uv.len = s;
  u->uv.metatable = NULL;
  u->uv.env = e;
  /* chain it on udata list (after main thread) */
  u->uv.next = G(L)->mainthread->next;
  G(L)->mainthread->next = obj2gco(u);
  return u;
}

