using System.Text;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>What the test asks of a response beyond "no 5xx, no dropped connection, no unhandled exception".</summary>
public enum Expect
{
    /// <summary>Any answer below 500.</summary>
    NoServerError,

    /// <summary>A 4xx: the request must be refused (e.g. an admin body over the limit, dot segments in an admin path).</summary>
    Refused,

    /// <summary>
    /// The request line names an HTTP version other than 1.x: RFC 9110 §15.6.6 505 (HTTP Version Not Supported) is the
    /// one 5xx that is the right answer to a client's mistake.
    /// </summary>
    VersionRefusal,
}

/// <summary>One request of the corpus, as the bytes that go on the wire.</summary>
public sealed record RawRequest(string Family, string Description, byte[] Bytes, Expect Expect = Expect.NoServerError)
{
    /// <summary>
    /// The request as the inside of a bash <c>$'…'</c> string (<c>printf '%s' $'…' | nc 127.0.0.1 PORT</c>): printable
    /// ASCII as is, everything else escaped; a run of 32 or more identical bytes is written <c>b{×N}</c>, to be expanded.
    /// </summary>
    public string Replay(int max = 3000)
    {
        var text = new StringBuilder();
        for (var i = 0; i < Bytes.Length && text.Length < max; i++)
        {
            var run = 1;
            while (i + run < Bytes.Length && Bytes[i + run] == Bytes[i] && run < int.MaxValue)
            {
                run++;
            }

            if (run >= 32)
            {
                text.Append(Escape(Bytes[i])).Append($"{{×{run}}}");
                i += run - 1;
                continue;
            }

            text.Append(Escape(Bytes[i]));
        }

        return text.Length >= max ? text.Append($"… ({Bytes.Length} bytes)").ToString() : text.ToString();
    }

    private static string Escape(byte b) => b switch
    {
        (byte)'\r' => "\\r",
        (byte)'\n' => "\\n",
        (byte)'\\' => "\\\\",
        (byte)'\'' => "\\'",
        >= 0x20 and < 0x7f => ((char)b).ToString(),
        _ => $"\\x{b:x2}",
    };
}

/// <summary>How the body is framed on the wire (RFC 9112 §6).</summary>
public enum Framing
{
    ContentLength,
    Chunked,
    ChunkedWithExtensions,
    ContentLengthAndChunked,
    DuplicateContentLength,
    ConflictingContentLength,
    NonNumericContentLength,
    ShortContentLength,
    NoLength,
    UnknownTransferCoding,
}

/// <summary>A name and value exactly as they appear on the wire (already percent-encoded, or deliberately not).</summary>
public sealed record Param(string Name, string? Value)
{
    public static Param Of(string name, string value) => new(Uri.EscapeDataString(name), Uri.EscapeDataString(value));

    /// <summary>A null value is a name without <c>=</c> (<c>a&amp;b</c>).</summary>
    public override string ToString() => Value is null ? Name : $"{Name}={Value}";
}

/// <summary>
/// A request being built: a well-formed request of an endpoint family that mutations then bend. Strings hold one
/// byte per character (Latin-1), so a mutation can put any byte anywhere; <see cref="Wire.Utf8"/> turns text into them.
/// </summary>
public sealed class RequestDraft(string family, string method, string path)
{
    public string Family { get; } = family;

    public string Method { get; set; } = method;

    public string Path { get; set; } = path;

    public string Version { get; set; } = "HTTP/1.1";

    public List<Param> Query { get; } = [];

    public List<(string Name, string Value)> Headers { get; } = [];

    /// <summary>Form fields of an <c>application/x-www-form-urlencoded</c> body (null: no form).</summary>
    public List<Param>? Form { get; set; }

    /// <summary>A body given as bytes (JSON, multipart, junk); wins over <see cref="Form"/>.</summary>
    public byte[]? Body { get; set; }

    public Framing Framing { get; set; } = Framing.ContentLength;

    /// <summary>Parameters a mutation must leave alone (a correct password must stay correct, or lockout would hide the page).</summary>
    public HashSet<string> Protected { get; } = new(StringComparer.Ordinal);

    public bool OmitHost { get; set; }

    public Expect Expect { get; set; } = Expect.NoServerError;

    /// <summary>
    /// The endpoint reads the body of a request of this method and must refuse one over this many bytes (the
    /// admin API's 64 KiB, the protocol endpoints' 16 KiB), however it is framed.
    /// </summary>
    public (string Method, int Bytes)? BodyLimit { get; set; }

    /// <summary>
    /// A <c>.</c> or <c>..</c> segment (or its percent-encoding) must be refused, not resolved to the parent route
    /// (issue 15 item 6: <c>DELETE …/users/..</c> deleted the account).
    /// </summary>
    public bool RefuseDotSegments { get; set; }

    public List<string> Steps { get; } = [];

    public string? Header(string name) => Headers.LastOrDefault(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public RequestDraft SetHeader(string name, string value)
    {
        Headers.RemoveAll(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        Headers.Add((name, value));
        return this;
    }

    public RequestDraft WithForm(params Param[] fields)
    {
        Form = [.. fields];
        return SetHeader("Content-Type", "application/x-www-form-urlencoded");
    }

    public RequestDraft WithJson(string json) => WithJson(Encoding.UTF8.GetBytes(json));

    public RequestDraft WithJson(byte[] json)
    {
        Body = json;
        return SetHeader("Content-Type", "application/json");
    }

    public byte[] BodyBytes() => Body ?? (Form is null ? [] : Wire.Bytes(string.Join('&', Form)));

    public RawRequest Build()
    {
        var body = BodyBytes();
        // What the server takes for the body: half of it under a short Content-Length, none without a length.
        if (RefuseDotSegments && Expect == Expect.NoServerError && HasAdminDotSegment(Path))
        {
            Expect = Expect.Refused;
            Steps.Add("dot-segment");
        }

        var declared = Framing switch { Framing.ShortContentLength => body.Length / 2, Framing.NoLength => 0, _ => body.Length };
        if (BodyLimit is { } limit && Expect == Expect.NoServerError && Method == limit.Method && declared > limit.Bytes)
        {
            Expect = Expect.Refused;
            Steps.Add($"over-limit:{limit.Bytes}");
        }

        var head = new StringBuilder();
        var target = Query.Count == 0 ? Path : Path + (Path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + string.Join('&', Query);
        head.Append(Method).Append(' ').Append(target).Append(' ').Append(Version).Append("\r\n");
        if (!OmitHost && !Headers.Any(h => h.Name.Equals("Host", StringComparison.OrdinalIgnoreCase)))
        {
            head.Append("Host: localhost\r\n");
        }

        foreach (var (name, value) in Headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        var hasBody = body.Length > 0 || Form is not null || Body is not null;
        var framed = hasBody ? Frame(head, body) : [];
        head.Append("Connection: close\r\n\r\n");
        var description = $"{Method} {Truncate(Path, 120)} [{string.Join(" + ", Steps)}]";
        return new RawRequest(Family, description, [.. Wire.Bytes(head.ToString()), .. framed], Expect);
    }

    public static bool HasDotSegment(string path) =>
        path.Split('?')[0].Split('/').Any(segment => segment.Replace("%2e", ".", StringComparison.OrdinalIgnoreCase) is "." or "..");

    /// <summary>A dot segment in a path of the admin API (other paths, such as the OpenAPI document, may resolve them).</summary>
    private static bool HasAdminDotSegment(string path) =>
        HasDotSegment(path) && path.Contains("/admin/", StringComparison.OrdinalIgnoreCase);

    private byte[] Frame(StringBuilder head, byte[] body)
    {
        switch (Framing)
        {
            case Framing.ContentLength:
                head.Append($"Content-Length: {body.Length}\r\n");
                return body;
            case Framing.Chunked:
            case Framing.ChunkedWithExtensions:
                head.Append("Transfer-Encoding: chunked\r\n");
                return Chunk(body, Framing == Framing.ChunkedWithExtensions);
            case Framing.ContentLengthAndChunked:
                head.Append($"Content-Length: {body.Length}\r\nTransfer-Encoding: chunked\r\n");
                return Chunk(body, extensions: false);
            case Framing.DuplicateContentLength:
                head.Append($"Content-Length: {body.Length}\r\nContent-Length: {body.Length}\r\n");
                return body;
            case Framing.ConflictingContentLength:
                head.Append($"Content-Length: {body.Length}\r\nContent-Length: {body.Length + 1}\r\n");
                return body;
            case Framing.NonNumericContentLength:
                head.Append($"Content-Length: +{body.Length}\r\n");
                return body;
            case Framing.ShortContentLength:
                head.Append($"Content-Length: {body.Length / 2}\r\n");
                return body;
            case Framing.UnknownTransferCoding:
                head.Append("Transfer-Encoding: gzip, chunked\r\n");
                return Chunk(body, extensions: false);
            default:
                return body; // NoLength: the bytes follow the head with nothing saying they are a body
        }
    }

    /// <summary>RFC 9112 §7.1 chunks of uneven sizes (upper-case hex, leading zeros, extensions when asked).</summary>
    private static byte[] Chunk(byte[] body, bool extensions)
    {
        using var output = new MemoryStream();
        var size = 1;
        for (var offset = 0; offset < body.Length; offset += size)
        {
            size = Math.Min(body.Length - offset, size * 7 % 8191 + 1);
            var line = extensions ? $"00{size:X};name=\"value\";x\r\n" : $"{size:x}\r\n";
            output.Write(Wire.Bytes(line));
            output.Write(body, offset, size);
            output.Write("\r\n"u8);
        }

        output.Write(extensions ? "0;last\r\nX-Trailer: junk\r\n\r\n"u8 : "0\r\n\r\n"u8);
        return output.ToArray();
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + $"…({text.Length})";
}

/// <summary>Bytes on the wire, one per character.</summary>
public static class Wire
{
    public static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    /// <summary>Text as its UTF-8 bytes, one byte per character (raw non-ASCII bytes in a path or a header).</summary>
    public static string Utf8(string text) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(text));
}
