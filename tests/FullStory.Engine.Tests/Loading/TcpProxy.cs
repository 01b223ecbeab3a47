using System.Net;
using System.Net.Sockets;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// A loopback TCP proxy in front of a server, to make the server stop answering on demand: <see cref="Freeze"/> stops
/// forwarding (and reading) in both directions, as a hung server or a network that drops everything would.
/// <see cref="Dispose"/> closes every connection.
/// </summary>
internal sealed class TcpProxy : IDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly string targetHost;
    private readonly int targetPort;
    private readonly List<Socket> sockets = new();
    private readonly CancellationTokenSource stop = new();
    private volatile bool frozen;

    public TcpProxy(string targetHost, int targetPort)
    {
        this.targetHost = targetHost;
        this.targetPort = targetPort;
        listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>A connection string like <paramref name="connectionString"/>, but through this proxy.</summary>
    public static (TcpProxy Proxy, string ConnectionString) For(string connectionString, string applicationName)
    {
        var b = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(connectionString);
        var (host, port) = ParseDataSource(b.DataSource);
        var proxy = new TcpProxy(host, port);
        b.DataSource = $"127.0.0.1,{proxy.Port}";
        b.ApplicationName = applicationName;
        return (proxy, b.ConnectionString);
    }

    private static (string Host, int Port) ParseDataSource(string dataSource)
    {
        string ds = dataSource.StartsWith("tcp:", StringComparison.OrdinalIgnoreCase) ? dataSource[4..] : dataSource;
        int comma = ds.LastIndexOf(',');
        return comma < 0 ? (ds, 1433) : (ds[..comma], int.Parse(ds[(comma + 1)..]));
    }

    /// <summary>From now on nothing passes in either direction; the connections stay open.</summary>
    public void Freeze() => frozen = true;

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptSocketAsync(stop.Token); }
            catch (Exception) { return; }
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try { await server.ConnectAsync(targetHost, targetPort, stop.Token); }
            catch (Exception) { client.Dispose(); server.Dispose(); continue; }
            lock (sockets) { sockets.Add(client); sockets.Add(server); }
            _ = Task.Run(() => Pump(client, server));
            _ = Task.Run(() => Pump(server, client));
        }
    }

    private async Task Pump(Socket from, Socket to)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                while (frozen) await Task.Delay(50, stop.Token);
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                if (n == 0) break;
                while (frozen) await Task.Delay(50, stop.Token);
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, stop.Token);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception) { /* closed */ }
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        lock (sockets)
        {
            foreach (var s in sockets)
            {
                try { s.LingerState = new LingerOption(true, 0); } catch (Exception) { }
                s.Dispose();
            }
        }
    }
}
