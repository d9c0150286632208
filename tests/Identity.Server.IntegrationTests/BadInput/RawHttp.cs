using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>What became of one raw request: the response's status (and its first bytes), or no response at all.</summary>
public sealed record RawOutcome(int? Status, string Head, string? Error)
{
    public bool Answered => Status is not null;

    public override string ToString() => Status is { } status ? $"{status} ({Head})" : $"no response: {Error}";
}

/// <summary>
/// HTTP/1.1 over a plain TCP socket: the request's bytes are written exactly as given (HttpClient refuses to send
/// most of what the corpus holds), and the response is read while they are written, so that a server answering
/// early (413, 400) and closing is seen answering rather than resetting a half-written request.
/// </summary>
public static class RawHttp
{
    private const int MaxResponseBytes = 4 * 1024 * 1024;

    public static async Task<RawOutcome> SendAsync(IPEndPoint server, byte[] request, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(server, cancel.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return new RawOutcome(null, "", "connect failed: " + ex.Message);
        }

        var reading = ReadAllAsync(socket, cancel.Token);
        string? writeError = null;
        try
        {
            for (var sent = 0; sent < request.Length;)
            {
                sent += await socket.SendAsync(request.AsMemory(sent, Math.Min(64 * 1024, request.Length - sent)), SocketFlags.None, cancel.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The server may stop reading and close once it has answered (a body too large): the answer decides.
            writeError = ex.Message;
        }

        var (response, readError) = await reading;
        return Parse(response, readError ?? (response.Length == 0 ? writeError : null));
    }

    private static async Task<(byte[] Bytes, string? Error)> ReadAllAsync(Socket socket, CancellationToken cancel)
    {
        using var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (received.Length < MaxResponseBytes)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel);
                if (read == 0)
                {
                    break; // every request says "Connection: close": the end of the stream is the end of the response
                }

                received.Write(buffer, 0, read);
            }

            return (received.ToArray(), null);
        }
        catch (OperationCanceledException)
        {
            return (received.ToArray(), received.Length == 0 ? "timed out" : null);
        }
        catch (SocketException ex)
        {
            // A reset after a complete answer is the server closing on unread request bytes: still an answer.
            return (received.ToArray(), received.Length == 0 ? $"{ex.SocketErrorCode}: {ex.Message}" : null);
        }
    }

    /// <summary>The final status (interim 1xx responses skipped), or the reason there is none.</summary>
    private static RawOutcome Parse(byte[] response, string? error)
    {
        var text = Encoding.Latin1.GetString(response, 0, Math.Min(response.Length, 64 * 1024));
        var offset = 0;
        while (true)
        {
            var lineEnd = text.IndexOf("\r\n", offset, StringComparison.Ordinal);
            var line = lineEnd < 0 ? text[offset..] : text[offset..lineEnd];
            var parts = line.Split(' ', 3);
            if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(parts[1], out var status))
            {
                return new RawOutcome(null, Printable(line), error ?? (response.Length == 0 ? "closed without a response" : "not an HTTP response"));
            }

            var headEnd = text.IndexOf("\r\n\r\n", offset, StringComparison.Ordinal);
            if (status is >= 100 and < 200 && headEnd >= 0)
            {
                offset = headEnd + 4; // 100 Continue: the final response follows
                continue;
            }

            return new RawOutcome(status, Printable(line) + Excerpt(text, headEnd), null);
        }
    }

    /// <summary>The first characters of the body: enough to tell an RFC 6749 error or a problem from an HTML page.</summary>
    private static string Excerpt(string text, int headEnd)
    {
        if (headEnd < 0)
        {
            return "";
        }

        var body = text[(headEnd + 4)..];
        return body.Length == 0 ? "" : " " + Printable(body.Length > 160 ? body[..160] + "…" : body);
    }

    private static string Printable(string text) =>
        string.Concat(text.Select(c => c is >= ' ' and < (char)0x7f ? c.ToString() : c is '\r' or '\n' ? " " : $"\\x{(int)c:x2}"));
}
