using System.Text;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>
/// Ways to bend a well-formed request, each independent of the endpoint: content types, encodings, duplicated and
/// oversized parameters, body framing, methods, paths, headers, HTTP versions. A corpus request gets zero to three.
/// </summary>
public static class Mutations
{
    private static readonly (string Name, Action<RequestDraft, Random> Apply)[] All =
    [
        ("content-type", ContentType),
        ("content-type", ContentType),
        ("multipart", Multipart),
        ("param-encoding", ParamEncoding),
        ("param-encoding", ParamEncoding),
        ("param-duplicate", ParamDuplicate),
        ("param-duplicate", ParamDuplicate),
        ("param-oversized", ParamOversized),
        ("param-many", ParamMany),
        ("param-drop", ParamDrop),
        ("param-shape", ParamShape),
        ("param-junk", ParamJunk),
        ("param-junk", ParamJunk),
        ("body-bytes", BodyBytes),
        ("framing", Framings),
        ("framing", Framings),
        ("method", Method),
        ("path", Path),
        ("path", Path),
        ("header", Header),
        ("header", Header),
        ("version", Version),
    ];

    public static void Apply(RequestDraft draft, Random random)
    {
        // Often none: the endpoint families already bend one thing, and a request bent in one place reaches deepest.
        var count = random.Next(20) switch { < 7 => 0, < 16 => 1, < 19 => 2, _ => 3 };
        for (var i = 0; i < count; i++)
        {
            random.Pick(All).Apply(draft, random);
        }
    }

    private static void ContentType(RequestDraft draft, Random random)
    {
        var current = draft.Header("Content-Type") ?? "application/x-www-form-urlencoded";
        var value = random.Next(12) switch
        {
            0 => null,
            1 => $"{current}, application/json",
            2 => "application/x-www-form-urlencoded, application/x-www-form-urlencoded",
            3 => current + random.Pick(["; charset=utf-7", "; charset=\"\"", "; charset=nonexistent", "; charset=utf-16", "; charset=iso-8859-1",
                "; charset=UTF-8; charset=latin1", ";;;", "; =x", "; charset", "; boundary=x"]),
            4 => current.ToUpperInvariant(),
            5 => random.Pick(["text/plain", "application/json", "application/xml", "*/*", "garbage", "application/", "/", "",
                "application/x-www-form-urlencoded-junk", "application/jwt", "application/octet-stream", "multipart/mixed"]),
            6 => "application/x-www-form-urlencoded" + new string(' ', random.Next(1, 2000)),
            7 => Wire.Utf8("application/jsön"),
            8 => "application/json; charset=utf-8, text/plain",
            9 => "application/merge-patch+json",
            10 => "application/problem+json",
            _ => current + "; charset=" + new string('x', random.Next(100, 6000)),
        };
        draft.Headers.RemoveAll(h => h.Name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase));
        if (value is not null)
        {
            draft.Headers.Add(("Content-Type", value));
            if (random.Chance(0.15))
            {
                draft.Headers.Add(("Content-Type", random.Pick(["application/json", "text/plain", value])));
            }
        }

        draft.Steps.Add("content-type:" + (value is null ? "missing" : Short(value)));
    }

    /// <summary>The form (or body) as multipart/form-data (RFC 7578), with a good or a broken boundary.</summary>
    private static void Multipart(RequestDraft draft, Random random)
    {
        var boundary = random.Pick(["----fuzz7MA4YWxkTrZu0gW", "x", new string('b', 75), "", "\"quoted boundary\"", "a b", "--"]);
        var written = random.Chance(0.7) ? boundary.Trim('"') : "other";
        var body = new StringBuilder();
        foreach (var field in draft.Form ?? [new Param("field", "value")])
        {
            body.Append("--").Append(written).Append("\r\nContent-Disposition: form-data; name=\"")
                .Append(Uri.UnescapeDataString(field.Name)).Append("\"\r\n\r\n").Append(Uri.UnescapeDataString(field.Value ?? "")).Append("\r\n");
        }

        if (random.Chance(0.2))
        {
            body.Append("--").Append(written).Append("\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../x.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .Append(Encoding.Latin1.GetString(Junk.RandomBytes(random, random.Next(1, 3000)))).Append("\r\n");
        }

        if (random.Chance(0.8))
        {
            body.Append("--").Append(written).Append("--\r\n");
        }

        draft.Body = Wire.Bytes(body.ToString());
        draft.SetHeader("Content-Type", random.Chance(0.8) ? $"multipart/form-data; boundary={boundary}" : "multipart/form-data");
        draft.Steps.Add("multipart:" + Short(boundary));
    }

    private static void ParamEncoding(RequestDraft draft, Random random)
    {
        if (Target(draft, random) is not var (list, index, where))
        {
            draft.Path += Junk.Encoded(random);
            draft.Steps.Add("path-encoding");
            return;
        }

        var param = list[index];
        var bad = Junk.Encoded(random);
        list[index] = random.Next(4) switch
        {
            0 => param with { Name = param.Name + bad },
            1 => param with { Value = bad },
            _ => param with { Value = (param.Value ?? "") + bad },
        };
        draft.Steps.Add($"encoding:{where}:{Short(param.Name)}={Short(bad)}");
    }

    private static void ParamDuplicate(RequestDraft draft, Random random)
    {
        if (Target(draft, random) is not var (list, index, where))
        {
            return;
        }

        var param = list[index];
        var copy = random.Next(4) switch
        {
            0 => param,
            1 => param with { Value = "" },
            2 => param with { Value = Junk.Encoded(random) },
            _ => param with { Name = param.Name.ToUpperInvariant() },
        };
        // RFC 6749 §3.1/§3.2: a parameter sent twice is an error; also across the query and the body.
        var into = random.Chance(0.3) ? (list == draft.Query ? draft.Form ?? draft.Query : draft.Query) : list;
        into.Insert(random.Next(into.Count + 1), copy);
        draft.Steps.Add($"duplicate:{where}:{Short(param.Name)}");
    }

    private static void ParamOversized(RequestDraft draft, Random random)
    {
        var inQuery = draft.Form is null || random.Chance(0.3);
        var size = inQuery ? random.Next(1000, 12_000) : random.Next(4_000, random.Chance(0.2) ? 2_000_000 : 100_000);
        var list = inQuery ? draft.Query : draft.Form!;
        var value = Junk.Run(random, size);
        var at = Mutable(draft, list, random);
        if (at >= 0 && random.Chance(0.7))
        {
            list[at] = list[at] with { Value = value };
        }
        else
        {
            list.Add(new Param(random.Chance(0.2) ? Junk.Run(random, size) : "big", value));
        }

        draft.Steps.Add($"oversized:{(inQuery ? "query" : "form")}:{value.Length}");
    }

    private static void ParamMany(RequestDraft draft, Random random)
    {
        var inQuery = draft.Form is null || random.Chance(0.3);
        var list = inQuery ? draft.Query : draft.Form!;
        var count = inQuery ? random.Next(50, 1500) : random.Next(500, 6000);
        var same = random.Chance(0.3);
        for (var i = 0; i < count; i++)
        {
            list.Add(new Param(same ? "scope" : $"p{i}", "v"));
        }

        draft.Steps.Add($"many:{(inQuery ? "query" : "form")}:{count}{(same ? ":same-name" : "")}");
    }

    private static void ParamDrop(RequestDraft draft, Random random)
    {
        if (Target(draft, random) is var (list, index, where))
        {
            draft.Steps.Add($"drop:{where}:{Short(list[index].Name)}");
            list.RemoveAt(index);
        }
    }

    /// <summary>Separators and names that are not name=value pairs: <c>&amp;&amp;</c>, <c>=x</c>, a name without <c>=</c>, <c>;</c>.</summary>
    private static void ParamShape(RequestDraft draft, Random random)
    {
        var list = draft.Form is not null && random.Chance(0.6) ? draft.Form : draft.Query;
        var odd = random.Pick<Param>([new("", "x"), new("", ""), new("", null), new("flag", null), new("a;b", "c"), new("a", "b=c=d"),
            new("a[]", "1"), new("a[0][b]", "1"), new("__proto__", "x"), new("&&&", null), new("%26", "%3D")]);
        list.Insert(random.Next(list.Count + 1), odd);
        draft.Steps.Add($"shape:{odd}");
    }

    private static void ParamJunk(RequestDraft draft, Random random)
    {
        if (Target(draft, random) is var (list, index, where))
        {
            var value = random.Chance(0.3) ? Uri.EscapeDataString(Junk.Jwt(random)) : Junk.Encoded(random);
            draft.Steps.Add($"junk:{where}:{Short(list[index].Name)}={Short(value)}");
            list[index] = list[index] with { Value = value };
        }
    }

    /// <summary>Raw bytes in the body that no encoding allows: invalid UTF-8, overlong forms, NUL, control characters.</summary>
    private static void BodyBytes(RequestDraft draft, Random random)
    {
        var body = draft.BodyBytes().ToList();
        byte[] bad = random.Pick<byte[]>([[0xC3, 0x28], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xFF, 0xFE], [0x00], [0x01, 0x1B, 0x7F],
            [0xF8, 0x88, 0x80, 0x80, 0x80], [0x0D], [0x0A, 0x0A], [0xEF, 0xBB, 0xBF]]);
        body.InsertRange(random.Next(body.Count + 1), bad);
        draft.Body = [.. body];
        if (draft.Header("Content-Type") is null)
        {
            draft.SetHeader("Content-Type", "application/x-www-form-urlencoded");
        }

        draft.Steps.Add("body-bytes:" + Convert.ToHexString(bad));
    }

    private static void Framings(RequestDraft draft, Random random)
    {
        if (draft.Form is null && draft.Body is null)
        {
            draft.Body = random.Chance(0.5) ? [] : Encoding.ASCII.GetBytes("unexpected=body");
        }

        draft.Framing = random.Pick(Enum.GetValues<Framing>());
        draft.Steps.Add("framing:" + draft.Framing);
    }

    private static void Method(RequestDraft draft, Random random)
    {
        draft.Method = random.Pick(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "get", "Post", "POST", "GET",
            "QUERY", "FOO", new string('M', random.Next(100, 3000)), "G\u0000ET", "GE T", "GET\t"]);
        draft.Steps.Add("method:" + Short(draft.Method));
    }

    /// <summary>Dot segments, encoded slashes, double slashes, case, unicode (raw and encoded), very long paths.</summary>
    private static void Path(RequestDraft draft, Random random)
    {
        var path = draft.Path;
        var at = path.LastIndexOf('/') is var slash and > 0 ? slash : path.Length;
        draft.Path = random.Next(16) switch
        {
            0 => path.Insert(at, "/."),
            1 => path + "/..",
            2 => path.Insert(at, "/x/.."),
            3 => path.Insert(at, "/%2e%2e"),
            4 => path.Replace("/", "%2F", StringComparison.Ordinal).Insert(0, "/"),
            5 => "/" + path,
            6 => path.Replace("/", "//", StringComparison.Ordinal),
            7 => path + "/",
            8 => path.ToUpperInvariant(),
            9 => path + ";jsessionid=" + Junk.Run(random, 40),
            10 => path + Wire.Utf8(random.Pick(["/café", "/日本", "/👩‍💻", "/\u202E"])),
            11 => path + random.Pick(["/caf%C3%A9", "/%FF", "/%C0%AF", "/%00", "/%0A", "/%", "/%2", "/%u2215", "/%252F"]),
            12 => path + "/" + Junk.Run(random, random.Chance(0.5) ? 2000 : 10_000),
            13 => path.Replace("/", "\\", StringComparison.Ordinal),
            14 => "http://localhost" + path,
            _ => random.Pick(["*", "", "//evil.example" + path, "/./." + path, "/../../../etc/passwd", "?" + path]),
        };
        draft.Steps.Add("path:" + Short(draft.Path, 60));
    }

    private static void Header(RequestDraft draft, Random random)
    {
        string step;
        switch (random.Next(18))
        {
            case 0:
                draft.OmitHost = true;
                step = "no-host";
                break;
            case 1:
                draft.Headers.Add(("Host", random.Pick(["localhost", "evil.example", "", "a b", "localhost:99999", "[::1", "localhost, evil.example", Wire.Utf8("hôst")])));
                if (random.Chance(0.5))
                {
                    draft.Headers.Add(("Host", "other.example"));
                }

                step = "host:" + draft.Header("Host");
                break;
            case 2:
                draft.Headers.Add(("X-Junk", Junk.Run(random, random.Chance(0.5) ? 20_000 : 70_000)));
                step = "huge-header";
                break;
            case 3:
                for (var i = 0; i < random.Next(100, 300); i++)
                {
                    draft.Headers.Add(($"X-H{i}", "v"));
                }

                step = "many-headers";
                break;
            case 4:
                draft.Headers.Add(("Accept-Language", random.Pick(["*;q=abc", "xx-YY-ZZ-123456789", "en;q=1e999, fr;q=-1", new string('a', 3000), ",,,;"])));
                step = "accept-language";
                break;
            case 5:
                draft.Headers.Add(("Accept", random.Pick(["application/json;q=x", "*/*;q=1e999", "text/html, */*; level=\"", "", ";;;", "x/" + new string('y', 2000)])));
                step = "accept";
                break;
            case 6:
                draft.Headers.Add(("Cookie", random.Pick([".AspNetCore.Identity.Application=garbage", ".AspNetCore.Antiforgery.x=%%%", "=; ==; a", "a=" + new string('c', 5000),
                    ".AspNetCore.Identity.Application=" + Junk.Base64Url(Junk.RandomBytes(random, 300)), ".AspNetCore.Identity.TwoFactorUserId=junk", "a=b; a=c; a=d"])));
                step = "cookie";
                break;
            case 7 when draft.Protected.Contains("Authorization"):
                draft.Headers.Add(("Authorization", "Bearer second"));
                step = "second-authorization";
                break;
            case 7:
                draft.Headers.RemoveAll(h => h.Name.Equals("Authorization", StringComparison.OrdinalIgnoreCase));
                draft.Headers.Add(("Authorization", random.Pick(["Bearer", "Bearer ", "Bearer " + Junk.Jwt(random), "Basic", "Basic !!!", "Basic " + Junk.Base64Url("no-colon"),
                    "Digest x", "Bearer a b c", "bearer " + Junk.Jwt(random), "Basic " + Convert.ToBase64String([0xFF, 0xFE, 0x3A, 0xC3]), "Negotiate YII=", "DPoP x"])));
                if (random.Chance(0.3))
                {
                    draft.Headers.Add(("Authorization", "Bearer second"));
                }

                step = "authorization:" + Short(draft.Header("Authorization")!);
                break;
            case 8:
                draft.Headers.Add(("Expect", random.Pick(["100-continue", "junk", "100-continue, 100-continue"])));
                step = "expect:" + draft.Header("Expect");
                break;
            case 9:
                draft.Headers.Add(("X-Forwarded-For", random.Pick(["junk", "1.2.3.4, ,,, 999.1.1.1", "::::::", new string('1', 3000), "unknown", "192.0.2.77"])));
                draft.Headers.Add(("X-Forwarded-Proto", random.Pick(["https", "junk", "", "https, http"])));
                draft.Headers.Add(("X-Forwarded-Host", random.Pick(["evil.example", "", "a b", Wire.Utf8("hôst")])));
                step = "forwarded";
                break;
            case 10:
                draft.Headers.Add(("If-Match", random.Pick(["*", "\"1\"", "W/\"1\"", "junk", "\"", "\"1\", *", "\"" + new string('9', 400) + "\"", ""])));
                step = "if-match:" + Short(draft.Header("If-Match")!);
                break;
            case 11:
                draft.Headers.Add(("Range", random.Pick(["bytes=0-0", "bytes=-1,0-", "bytes=x", "items=1-2"])));
                draft.Headers.Add(("If-None-Match", random.Pick(["*", "\"x\"", "junk"])));
                step = "range";
                break;
            case 12:
                draft.Headers.Add(("Origin", random.Pick(["null", "https://evil.example", "", "http://localhost", "file://"])));
                step = "origin";
                break;
            case 13:
                draft.Headers.Add(("X-Folded", "a\r\n  folded continuation")); // obs-fold, RFC 9112 §5.2
                step = "obs-fold";
                break;
            case 14:
                draft.Headers.Add((random.Pick(["Bad Header", "Bad:Header", "", "X-\u0001", Wire.Utf8("X-Ü")]), "v"));
                step = "header-name";
                break;
            case 15:
                draft.Headers.Add(("X-Value", random.Pick(["\u0000", "a\u0001b", Wire.Utf8("café"), "\u00FF\u00FE", "a\rb"])));
                step = "header-value";
                break;
            case 16:
                draft.Headers.Add(("traceparent", random.Pick(["junk", "00-" + new string('0', 32) + "-" + new string('0', 16) + "-01", "ff-x-y-z", new string('a', 2000)])));
                draft.Headers.Add(("baggage", random.Pick(["=", "a=b,,,", new string('b', 9000)])));
                step = "trace";
                break;
            default:
                draft.Headers.Add(("Content-Encoding", random.Pick(["gzip", "br", "deflate", "identity", "junk"])));
                step = "content-encoding:" + draft.Header("Content-Encoding");
                break;
        }

        draft.Steps.Add(step);
    }

    private static void Version(RequestDraft draft, Random random)
    {
        draft.Version = random.Pick(["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/3", "http/1.1", "HTTP/1.1 ", "HTTP/11", "HTTP/"]);
        if (draft.Version is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            draft.Expect = draft.Expect == Expect.Refused ? Expect.Refused : Expect.VersionRefusal;
        }

        draft.Steps.Add("version:" + draft.Version);
    }

    /// <summary>A parameter a mutation may change: from the query or the form, never a protected one.</summary>
    private static (List<Param> List, int Index, string Where)? Target(RequestDraft draft, Random random)
    {
        var useForm = draft.Form is { Count: > 0 } && (draft.Query.Count == 0 || random.Chance(0.7));
        var list = useForm ? draft.Form! : draft.Query;
        var index = Mutable(draft, list, random);
        return index < 0 ? null : (list, index, useForm ? "form" : "query");
    }

    private static int Mutable(RequestDraft draft, List<Param> list, Random random)
    {
        var candidates = Enumerable.Range(0, list.Count).Where(i => !draft.Protected.Contains(list[i].Name)).ToList();
        return candidates.Count == 0 ? -1 : random.Pick(candidates);
    }

    private static string Short(string text, int max = 40)
    {
        var printable = string.Concat(text.Select(c => c is >= ' ' and < (char)0x7f ? c.ToString() : $"\\x{(int)c:x2}"));
        return printable.Length <= max ? printable : printable[..max] + $"…({text.Length})";
    }
}
