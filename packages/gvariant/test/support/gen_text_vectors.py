# Regenerates test/fixtures/glib-text-vectors.json: how GLib parses and prints
# each case. Usage: /usr/bin/python3 test/support/gen_text_vectors.py > test/fixtures/glib-text-vectors.json
import json
from gi.repository import GLib
cases = [
 ("'str'",None),('"str"',None),("5",None),("uint64 5",None),("true",None),("false",None),("[1, 2]",None),("@as []",None),
 ("<'x'>",None),("('a', 1)",None),("{'a': 1}",None),("b'bytes'",None),("byte 0x12",None),("just 5",None),("nothing","ms"),
 ("int64 -3",None),("3.5",None),("objectpath '/a'",None),("signature 'a{sv}'",None),("handle 7",None),("int16 -2",None),("uint16 65535",None),
 ("uint32 4294967295",None),("int32 -2147483648",None),("uint64 18446744073709551615",None),("int64 -9223372036854775808",None),
 ("\"it's\"",None),("'say \"hi\"'",None),("\"both ' and \\\"\"",None),("'tab\\there\\nnl\\\\bs'",None),("'\\u00e9\\U0001F600 \\x7f'",None),
 ("'\\u0001\\u007f\\u00ad\\u2028\\ufeff'",None),("b'it\\'s'",None),("b\"q\\\"\"",None),("b'\\001\\377\\a\\b\\f\\n\\r\\t\\v\\\\'",None),
 ("[byte 0x01, 0x02]",None),("@ay []",None),("b''",None),("[byte 0x00, 0x00]",None),("[byte 0x61, 0x00, 0x62, 0x00]",None),
 ("@mms nothing",None),("@mms just nothing",None),("@mms 'x'",None),("[just 5, nothing]",None),("[nothing, just 5]",None),("just just nothing","mmmi"),
 ("(1,)",None),("()",None),("(1, 'a', true)",None),("{1, 'x'}",None),("{'k': <'v'>, 'n': <uint64 5>}",None),("@a{sv} {}",None),
 ("[<1>, <'a'>]",None),("<<<@mi nothing>>>",None),("[[1, 2], []]",None),("[@ai [], [1]]",None),("([], [1])", "(aiai)"),
 ("1.0",None),("0.1",None),("1e20",None),("-0.0",None),("inf",None),("-inf",None),("nan",None),("1e-5",None),("123456789012345678",  "d"),
 ("1125899906842624.25",None),("5e-324",None),("2.5e-308", None),("1e308",None),("0x10",None),("010",None),("-0x10",None),("+5",None),("0x1p3","d"),
 ("[1, 2.5]",None),("{1: 'a', 2: 'b'}",None),("{'a': 1, 'b': 'x'}",None),("[1, 'a']",None),("{[1]: 2}",None),("[]",None),("{}",None),("nothing",None),
 ("'unterminated",None),("[1, 2",None),("(1)",None),("<1",None),("{1: 2, 3}",None),("foo 5",None),("null",None),("@a* []",None),("@z 1",None),
 ("5 6",None),("",None),("   ",None),("uint32 -1",None),("byte 256",None),("int16 32768",None),("int16 -32768",None),("99999999999999999999",None),
 ("1e999",None),("1e-400",None),("12x",None),("08",None),("0x",None),("'\\u00'",None),("'\\u0000'",None),("objectpath 'a'",None),("signature 'm'",None),
 ("5","s"),("'x'","i"),("5","mmi"),("5","t"),("[1]","ay"),("(1, 2)","(i)"),("{1, 2}","a{ii}"),("<5>","v"),("'/a/b'","o"),("true","mb"),("5","d"),
 ("uint32 5","t"),("@s 5",None),("[int32 1, uint32 2]",None),(" [ 1 , 2 ] ",None),("'a' 'b'",None),("just",None),("x",None),("[1,,2]",None),
 ("{'a' 1}",None),("@(ii) (1,2)",None),("'line\\\ncont'",None),("'\\q'",None),("b'\\q\\u'",None),("truex",None),("-",None),(".5",None),("5.",None),
]
out=[]
for text,t in cases:
  try:
    v=GLib.Variant.parse(None if t is None else GLib.VariantType.new(t), text, None, None)
    out.append({"text":text,"type":t,"ok":{"type":v.get_type_string(),"hex":bytes(v.get_data_as_bytes().get_data()).hex(),"p1":v.print_(True),"p0":v.print_(False)}})
  except GLib.Error as e:
    out.append({"text":text,"type":t,"error":e.message})
print(json.dumps(out, ensure_ascii=False, indent=1))
