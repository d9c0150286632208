using System.Globalization;

namespace Identity.Bench;

/// <summary>
/// CPU time of other processes from Linux's /proc, to split the measured window's CPU between the server,
/// PostgreSQL (the postmaster and its backends), the broker and the load generator. Zero where /proc is not readable.
/// Shared by the bench apps: each project links this file.
/// </summary>
public static class ProcCpu
{
    /// <summary>USER_HZ, the unit of /proc's CPU times: 100 on every mainstream Linux architecture.</summary>
    private const double TicksPerSecond = 100;

    /// <summary>CPU seconds used so far by <paramref name="pid"/> (user + system).</summary>
    public static double Process(int pid) => Fields(pid) is { } f ? (Tick(f, 14) + Tick(f, 15)) / TicksPerSecond : 0;

    /// <summary>
    /// CPU seconds used so far by <paramref name="pid"/>, its reaped children, and all its live descendants
    /// (PostgreSQL: the postmaster and the backends serving the server's connections; RabbitMQ: the start script and
    /// the Erlang VM under it).
    /// </summary>
    public static double ProcessTree(int pid)
    {
        if (Fields(pid) is not { } self)
        {
            return 0;
        }

        var ticks = Tick(self, 14) + Tick(self, 15) + Tick(self, 16) + Tick(self, 17);
        var children = new Dictionary<long, List<(int Pid, string[] Fields)>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var other)
                && other != pid && Fields(other) is { } f)
            {
                var parent = Tick(f, 4);
                if (!children.TryGetValue(parent, out var list))
                {
                    children[parent] = list = [];
                }

                list.Add((other, f));
            }
        }

        var pending = new Stack<int>([pid]);
        while (pending.TryPop(out var parent))
        {
            foreach (var (child, f) in children.GetValueOrDefault(parent) ?? [])
            {
                ticks += Tick(f, 14) + Tick(f, 15);
                pending.Push(child);
            }
        }

        return ticks / TicksPerSecond;
    }

    /// <summary>CPU seconds the whole machine has been busy (all cores: user, nice, system, irq, softirq, steal).</summary>
    public static double MachineBusy()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long Field(int i) => long.Parse(cpu[i], CultureInfo.InvariantCulture);
            return (Field(1) + Field(2) + Field(3) + Field(6) + Field(7) + Field(8)) / TicksPerSecond;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>The fields of /proc/PID/stat, numbered as in proc(5) (1 = pid, 2 = comm, 3 = state, ...).</summary>
    private static string[]? Fields(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            // comm (field 2) may contain spaces: split what follows its closing parenthesis; that starts at field 3.
            return ["", "", "", .. stat[(close + 2)..].Split(' ')];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    private static long Tick(string[] fields, int number) =>
        number < fields.Length && long.TryParse(fields[number], CultureInfo.InvariantCulture, out var v) ? v : 0;
}
