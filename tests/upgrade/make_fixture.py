# Builds tests/upgrade/relay-0.1.0.db with the released 0.1.0 binary (schema version 2):
#   git worktree add /tmp/relay-0.1.0 bb4409f && (cd /tmp/relay-0.1.0 && cargo build)
#   python3 tests/upgrade/make_fixture.py && cp /tmp/fixture-build/relay.db tests/upgrade/relay-0.1.0.db
# Keyed, timed and untimed messages, repeats of each kind, test messages, flagged and
# rejected requests, Meta bodies with an echo (direction out), deliveries delivered,
# failed and pending; then the times are spread over several days, as in a real database.
import json, os, signal, sqlite3, subprocess, threading, time, urllib.request, http.server, shutil
BIN=os.environ.get('RELAY_0_1_0', '/tmp/relay-0.1.0/target/debug/chatrace-relay')
FIXTURES=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures')
D='/tmp/fixture-build'; shutil.rmtree(D, ignore_errors=True); os.makedirs(D)
DB=D+'/relay.db'
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length'])); self.send_response(200); self.end_headers()
    def log_message(self,*a): pass
srv=http.server.HTTPServer(('127.0.0.1',0),H); threading.Thread(target=srv.serve_forever,daemon=True).start()
ok=f'http://127.0.0.1:{srv.server_port}/hook'
env=dict(os.environ, CHATRACE_RELAY_WEBHOOK_SECRET='test-webhook-secret-0123456789abcdef', CHATRACE_RELAY_ADMIN_TOKEN='test-admin-token-0123456789abcdef', RUST_LOG='warn')
def start(schedule):
    global p, addr
    p=subprocess.Popen([BIN,'serve','--listen','127.0.0.1:0','--db',DB,'--forward-url',ok,'--forward-url','http://127.0.0.1:9/closed','--retry-schedule',schedule],env=env,stdout=subprocess.PIPE)
    addr=p.stdout.readline().decode().strip().split('http://')[1]
start('1s')
def post(body, secret='test-webhook-secret-0123456789abcdef', test=False, ctype='application/json'):
    h={'Content-Type':ctype,'X-Webhook-Secret':secret}
    if test: h['X-Relay-Test']='1'
    r=urllib.request.Request(f'http://{addr}/instagram/webhook',data=body if isinstance(body,bytes) else json.dumps(body).encode(),headers=h,method='POST')
    try:
        with urllib.request.urlopen(r) as resp: return resp.status, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
names=['Anna Petrova','Борис Иванов','Chen Wei','Dana Levi','Émile Roux']
for i in range(40):
    c=i%5
    print(post({'contact_id':f'67422189345634{c:02d}','first_name':names[c].split()[0],'last_name':names[c].split()[1],'ig_username':f'user{c}','text':f'Здравствуйте, сообщение {i}','channel':'instagram','message_id':f'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwNjI{i:04d}'}))
time.sleep(4); p.send_signal(signal.SIGTERM); p.wait(); start('1h')
for i in range(20):
    c=i%4
    post({'contact_id':f'55500000000{c}','text':f'timed message {i}','channel':'instagram','timestamp':f'2026-11-{10+i%10:02d}T10:15:{i:02d}Z'})
for i in range(10):
    post({'contact_id':'77700000001','text':f'untimed {i}','channel':'instagram'})
# duplicates: keyed and timed
for i in range(5):
    post({'contact_id':f'67422189345634{i%5:02d}','text':f'Здравствуйте, сообщение {i}','channel':'instagram','message_id':f'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwNjI{i:04d}'})
for i in range(3):
    post({'contact_id':f'55500000000{i%4}','text':f'timed message {i}','channel':'instagram','timestamp':f'2026-11-{10+i%10:02d}T10:15:{i:02d}Z'})
for i in range(3):
    post({'contact_id':'99900000000','text':f'test {i}','channel':'instagram','message_id':f'test-{i}'}, test=True)
post({'event':'something','account':'1'})
post({'contact_id':'{{contact_id}}','text':'{{last_input}}'})
post({'contact_id':'1','text':'x'}, secret='wrong')
post({'contact_id':'1','text':'x'}, secret='wrong')
for f in ['meta-instagram.json','meta-echo-and-attachment.json','chatrace-media.json']:
    print(f, post(open(os.path.join(FIXTURES, f),'rb').read()))
time.sleep(4)
p.send_signal(signal.SIGTERM); p.wait()
srv.shutdown()
con=sqlite3.connect(DB)
# Spread the history over days, as a real database has it: every table's times move together.
for k in range(4):
    shift=k*86400000*3+k*3600000*5
    con.execute('UPDATE messages SET received_at = received_at - ? WHERE id % 4 = ?',(shift,k))
    con.execute('UPDATE raw_requests SET received_at = received_at - ? WHERE id % 4 = ?',(shift,k))
con.execute('UPDATE contacts SET first_seen = (SELECT min(received_at) FROM messages m WHERE m.contact_id = contacts.contact_id AND is_test = 0), last_seen = (SELECT max(received_at) FROM messages m WHERE m.contact_id = contacts.contact_id AND is_test = 0)')
con.commit()
con.execute('PRAGMA wal_checkpoint(TRUNCATE)'); con.execute('PRAGMA journal_mode=DELETE'); con.execute('VACUUM'); con.close()
con=sqlite3.connect(DB)
for q in ['PRAGMA user_version','SELECT count(*) FROM messages','SELECT count(*) FROM messages WHERE is_test=0','SELECT direction,count(*) FROM messages GROUP BY 1','SELECT count(*) FROM raw_requests','SELECT state,target,count(*) FROM deliveries GROUP BY 1,2','SELECT * FROM counters','SELECT count(*) FROM contacts','SELECT substr(dedup_key,1,2),count(*) FROM messages GROUP BY 1']:
    print(q, con.execute(q).fetchall())
