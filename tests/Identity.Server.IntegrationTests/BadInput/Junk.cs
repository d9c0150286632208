using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>Malformed values: text, URL encodings, JWTs and JSON documents, each drawn from a seeded <see cref="Random"/>.</summary>
public static class Junk
{
    /// <summary>Text a person or a script might send where a value is expected (decoded form).</summary>
    private static readonly string[] Texts =
    [
        "", " ", "  \t ", "null", "undefined", "[]", "{}", "0", "-1", "1e999", "NaN", "0x10", "99999999999999999999999", "true",
        "café", "日本語", "👩‍💻🔑", "\u202Eevil", "\uFEFFbom", "a\u0000b", "\u0001\u0002\u001f", "\u007f", "line\r\nSet-Cookie: x=y",
        "../../../../etc/passwd", "..\\..\\windows", "<script>alert(1)</script>", "' OR '1'='1", "\"; DROP TABLE users;--",
        "${jndi:ldap://127.0.0.1:1/a}", "{{7*7}}", "%s%s%s%n", "%", "%%", "+", "&", "=", "?", "#", "/", "//", "\\", ";",
        "http://127.0.0.1:1/", "javascript:alert(1)", "data:text/html,x", "//evil.example", "/\\evil.example", "https:evil.example",
        "ada@example.test", "ADA@EXAMPLE.TEST", " ada@example.test ", "a@b", "@", "x@y@z",
    ];

    /// <summary>Percent-encodings that decode to nothing valid, or to bytes that are not UTF-8 (already on-the-wire form).</summary>
    private static readonly string[] BadEncodings =
    [
        "%", "%G1", "%1", "a%2", "%%41", "%u0041", "%C3%28", "%C0%AF", "%C0%80", "%E0%80%AF", "%ED%A0%80", "%ED%BF%BF", "%F4%90%80%80",
        "%FF%FE", "%FE", "%80", "%00", "a%00b", "%0D%0A", "%0A", "%1B%5B31m", "%7F", "%C3", "%E2%82", "%F0%9F%98",
        "\u00C3\u00A9", "\u00FF", "\u0080\u0081", "caf\u00E9", "%EF%BB%BF", "%2e%2e%2f", "%252e", "%2F", "%5C", "+%2B+", "%20%20",
    ];

    public static T Pick<T>(this Random random, IReadOnlyList<T> items) => items[random.Next(items.Count)];

    public static bool Chance(this Random random, double probability) => random.NextDouble() < probability;

    public static string Text(Random random) => random.Pick(Texts);

    /// <summary>A value as it goes into a query string or a form: junk text encoded, or an encoding that is itself broken.</summary>
    public static string Encoded(Random random) => random.Next(3) switch
    {
        0 => Uri.EscapeDataString(Text(random)),
        1 => random.Pick(BadEncodings),
        _ => Uri.EscapeDataString(Text(random)) + random.Pick(BadEncodings) + Uri.EscapeDataString(Text(random)),
    };

    /// <summary>A long run of one character, up to <paramref name="max"/>.</summary>
    public static string Run(Random random, int max) => new(random.Pick(['a', 'A', '0', '-', '.']), random.Next(max / 4, max + 1));

    public static string Base64Url(string text) => Base64UrlEncoder.Encode(text);

    public static string Base64Url(byte[] bytes) => Base64UrlEncoder.Encode(bytes);

    /// <summary>
    /// A malformed JWT (RFC 7519): wrong segment counts, segments that are not base64url, headers and payloads that
    /// are not JSON objects or are hostile ones (alg none, nested junk, invalid UTF-8), huge tokens, and damaged copies
    /// of <paramref name="valid"/> when one is given.
    /// </summary>
    public static string Jwt(Random random, string? valid = null, string audience = "http://localhost/")
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = $$"""{"iss":"svc-jwt","sub":"svc-jwt","aud":"{{audience}}","jti":"{{random.Next()}}","iat":{{now}},"exp":{{now + 60}}}""";
        string Segment(string json) => Base64Url(json);
        switch (random.Next(valid is null ? 16 : 20))
        {
            case 0: return random.Pick(["", ".", "..", "...", "....", "a", "a.b", "a.b.c.d", "a.b.c.d.e", "a.b.c.d.e.f", " . . "]);
            case 1: return "eyJ!@#$.eyJ%%%.c2ln";
            case 2: return Segment("""{"alg":"none"}""") + "." + Segment(claims) + ".";
            case 3: return Segment("""{"alg":"none","typ":"JWT"}""") + "." + Segment(claims) + "." + random.Pick(["", "AAAA", "c2lnbmF0dXJl"]);
            case 4: return Segment(random.Pick(Headers)) + "." + Segment(claims) + "." + Base64Url(RandomBytes(random, 64));
            case 5: return Segment("""{"alg":"ES256","kid":"svc-jwt-1"}""") + "." + Segment(random.Pick(Payloads)) + "." + Base64Url(RandomBytes(random, 64));
            case 6: return Base64Url(RandomBytes(random, 30)) + "." + Base64Url(RandomBytes(random, 30)) + "." + Base64Url(RandomBytes(random, 30));
            case 7: return Segment("""{"alg":"ES256"}""") + "=." + Segment(claims) + "==." + "c2ln+/=";
            case 8: return Base64Url([0xC3, 0x28, 0xFF, 0xFE, (byte)'{']) + "." + Base64Url([0xED, 0xA0, 0x80]) + ".AA";
            case 9: return Segment(Nested(random.Next(100, 3000))) + "." + Segment(claims) + ".AA";
            case 10: return Segment("""{"alg":"ES256"}""") + "." + Segment("{\"pad\":\"" + new string('x', random.Next(20_000, 120_000)) + "\"}") + ".AA";
            case 11: return Segment("""{"alg":"RSA-OAEP","enc":"A256GCM"}""") + "." + Base64Url(RandomBytes(random, 256)) + ".AAAA.AAAA.AAAA";
            case 12: return Segment("""{"alg":"dir","enc":"A128CBC-HS256"}""") + "..AAAA." + Base64Url(RandomBytes(random, 40)) + ".AAAA";
            case 13: return Segment("""{"alg":"ES256","alg":"none"}""") + "." + Segment(claims) + ".";
            case 14: return Segment("null") + "." + Segment("[]") + "." + Segment("0");
            case 15: return "Bearer " + Segment("{}") + ".." + Segment("{}");
            case 16: return valid![..random.Next(valid!.Length)];
            case 17: return Flip(random, valid!);
            case 18: return valid! + "." + valid!;
            default:
                var parts = valid!.Split('.');
                return parts.Length >= 3 ? $"{parts[0]}.{parts[1]}.{parts[1]}" : valid!;
        }
    }

    private static readonly string[] Headers =
    [
        """{"alg":"HS256","kid":"svc-jwt-1"}""", """{"alg":"ES256","kid":"../../../../etc/passwd"}""", """{"alg":["ES256"]}""",
        """{"alg":null}""", """{"alg":1}""", "{}", "[]", "\"ES256\"", """{"alg":"ES256","crit":["exp"]}""",
        """{"alg":"ES256","typ":{"a":[1,2,{}]}}""", """{"alg":"ES256","x5c":["notbase64"]}""", """{"alg":"ES256","jwk":{"kty":"EC"}}""",
        """{"alg":"RS256","kid":"svc-jwt-1","typ":"client-authentication+jwt"}""", """{"alg":"ES256""", """{"alg":"ES256","cty":"JWT"}""",
        """{"alg":"ES256","kid":"svc-jwt-1","zip":"DEF"}""", """{"alg":"PS512","kid":""}""", """{"alg":"ES256","kid":1e999}""",
    ];

    private static readonly string[] Payloads =
    [
        """{"iss":1,"sub":2,"aud":3}""", """{"iss":"svc-jwt","sub":"svc-jwt","aud":[{}],"exp":"tomorrow"}""",
        """{"iss":"svc-jwt","sub":"svc-jwt","aud":"http://localhost/","exp":1e400}""", """{"iss":null,"sub":null,"aud":null,"exp":null}""",
        """{"iss":"svc-jwt","sub":"other","aud":"http://localhost/","exp":99999999999}""", """{"iss":["svc-jwt"],"sub":"svc-jwt"}""",
        """{"iss":"svc-jwt","sub":"svc-jwt","aud":"http://localhost/","exp":-1,"nbf":"x"}""", "[1,2,3]", "\"text\"", "{",
        """{"iss":"svc-jwt","iss":"other","sub":"svc-jwt","aud":"http://localhost/connect/token","exp":99999999999}""",
    ];

    public static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    /// <summary>A GUID from the seeded generator (Guid.NewGuid would make the corpus differ from run to run).</summary>
    public static Guid Uuid(Random random) => new(RandomBytes(random, 16));

    public static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string Flip(Random random, string text)
    {
        var chars = text.ToCharArray();
        var at = random.Next(chars.Length);
        chars[at] = chars[at] == 'A' ? 'B' : 'A';
        return new string(chars);
    }

    /// <summary>A JSON value of the wrong kind, or a hostile one, for a field that expects <paramref name="valid"/>.</summary>
    public static string JsonValue(Random random, string valid) => random.Next(14) switch
    {
        0 => "null",
        1 => "123",
        2 => "1e999",
        3 => "-0.0000001",
        4 => "true",
        5 => "{}",
        6 => "[null]",
        7 => "[" + valid + "," + valid + "]",
        8 => "\"" + new string('x', random.Next(1000, 70_000)) + "\"",
        9 => "\"\\u0000\\uD800\\uDFFF\\uFFFF\"",
        10 => Nested(random.Next(60, 1500)),
        11 => "[[" + valid + "]]",
        12 => "\"" + Utf8JsonSafe(Text(random)) + "\"",
        _ => "99999999999999999999999999",
    };

    /// <summary>Text escaped for the inside of a JSON string.</summary>
    public static string Utf8JsonSafe(string text) =>
        System.Text.Json.JsonEncodedText.Encode(text, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString();

    /// <summary>
    /// A JSON document built from <paramref name="fields"/> (name → valid JSON value), then damaged: malformed syntax,
    /// wrong types, deep nesting, huge strings, nulls in arrays, invalid UTF-8 in a string, duplicate keys, wrong top level.
    /// </summary>
    public static byte[] JsonBody(Random random, IReadOnlyList<(string Name, string Value)> fields, out string how)
    {
        var members = fields.Select(f => (f.Name, f.Value)).ToList();
        string Render() => "{" + string.Join(",", members.Select(m => $"\"{m.Name}\":{m.Value}")) + "}";
        var choice = random.Next(16);
        how = "json:" + choice;
        switch (choice)
        {
            case 0:
                how = "json-valid";
                return Encoding.UTF8.GetBytes(Render());
            case 1:
                how = "json-truncated";
                var text = Render();
                return Encoding.UTF8.GetBytes(text[..random.Next(text.Length)]);
            case 2:
                how = "json-syntax";
                return Encoding.UTF8.GetBytes(random.Pick([Render() + ",", "{'name':'x'}", "{name:\"x\"}", "{\"a\":1,}", "/*c*/" + Render(), "{\"a\":NaN}",
                    "{\"a\":Infinity}", "{\"a\":01}", "{\"a\":\"\t\"}", "{\"a\" \"b\"}", Render() + Render(), "\"\\x41\"", "{\"\\uZZZZ\":1}"]));
            case 3 when members.Count > 0:
                var at = random.Next(members.Count);
                how = $"json-wrong-type({members[at].Name})";
                members[at] = (members[at].Name, JsonValue(random, members[at].Value));
                return Encoding.UTF8.GetBytes(Render());
            case 4:
                how = "json-deep";
                var depth = random.Next(65, 5000);
                return Encoding.UTF8.GetBytes(random.Chance(0.5) ? Nested(depth)
                    : string.Concat(Enumerable.Repeat("{\"name\":", depth)) + "1" + new string('}', depth));
            case 5:
                how = "json-huge-string";
                members.Add(("name", "\"" + new string('x', random.Next(10_000, 200_000)) + "\""));
                return Encoding.UTF8.GetBytes(Render());
            case 6:
                how = "json-nulls-in-arrays";
                for (var i = 0; i < members.Count; i++)
                {
                    if (members[i].Value.StartsWith('['))
                    {
                        members[i] = (members[i].Name, random.Pick(["[null]", "[null,null]", "[\"eu\",null]", "[[]]", "[{}]", "[1]"]));
                    }
                }

                members.Add((random.Pick(["regions", "grantTypes", "scopes", "redirectUris", "algorithms"]), "[null]"));
                return Encoding.UTF8.GetBytes(Render());
            case 7:
                how = "json-invalid-utf8";
                var bytes = new List<byte>(Encoding.UTF8.GetBytes(Render()));
                var quote = bytes.IndexOf((byte)'"', bytes.Count / 2 > 0 ? random.Next(bytes.Count / 2 + 1) : 0);
                bytes.InsertRange(quote < 0 ? 0 : quote + 1, random.Pick<byte[]>([[0xC3, 0x28], [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x80], [0xF4, 0x90, 0x80, 0x80]]));
                return [.. bytes];
            case 8:
                how = "json-duplicate-keys";
                if (members.Count > 0)
                {
                    var twice = members[random.Next(members.Count)];
                    members.Add((twice.Name, JsonValue(random, twice.Value)));
                }

                members.Add((random.Pick(["Name", "NAME", "name"]), "\"dup\""));
                return Encoding.UTF8.GetBytes(Render());
            case 9:
                how = "json-top-level";
                return Encoding.UTF8.GetBytes(random.Pick(["", " ", "null", "[]", "[" + Render() + "]", "1", "\"x\"", "true", "\u0000", "{}"]));
            case 10:
                how = "json-bom";
                return [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Render())];
            case 11:
                how = "json-utf16";
                return Encoding.Unicode.GetBytes(Render());
            case 12:
                how = "json-unknown-field";
                members.Add((random.Pick(["id", "version", "__proto__", "constructor", "$type", "passwordHash", ""]), "\"x\""));
                return Encoding.UTF8.GetBytes(Render());
            case 13:
                how = "json-escapes";
                members.Add(("name", "\"\\u0000\\uD800x\\uDC00\\\\\\/\\b\\f\\n\\r\\t\""));
                return Encoding.UTF8.GetBytes(Render());
            case 14:
                how = "json-binary";
                return RandomBytes(random, random.Next(1, 400));
            default:
                how = "json-whitespace-padded";
                return Encoding.UTF8.GetBytes(new string(' ', random.Next(1, 5000)) + Render() + new string('\n', random.Next(1, 5000)));
        }
    }
}
